"""Exports that run in the background (WorkJob kind "export"): the same source and the same formats as
the screens' direct downloads, written to a file under WORK_JOB_DIR that only its asker downloads."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from workbench.export_sources import export_source
from workbench.exports import CONTENT_TYPES, FORMATS, csv_write, file_name, xlsx_write
from workbench.models import WorkJob
from workbench.services.notifications import notifications_send


def export_job(job: WorkJob, progress) -> dict:
    """Background export (WorkJob kind "export"): the same source, written to a file only its asker
    downloads. Written under a temporary name and renamed, so a rerun after a crash starts clean."""
    params = job.params or {}
    fmt = params.get("format")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    source = export_source(params.get("source", ""), job.requested_by, params.get("query", ""))
    total = job.total or source.count()
    progress(0, total)
    folder = Path(settings.WORK_JOB_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"export-{job.pk}.{fmt}"
    partial = path.with_suffix(f".{fmt}.part")

    def step(done: int) -> None:
        progress(done, max(total, done))

    if fmt == "csv":
        csv_write(source, partial, step)
    else:
        xlsx_write(source, partial, step)
    os.replace(partial, path)
    job.file_path = str(path)
    job.file_name = file_name(source, fmt, timezone.localdate())
    job.content_type = CONTENT_TYPES[fmt]
    # Nobody has to watch the progress bar: the inbox says when the file is there (once, even on a rerun).
    notifications_send(
        recipients=[job.requested_by],
        kind="export",
        title=f"Your export is ready: {job.title}",
        url=reverse("jobs:detail", args=[job.pk]),
        key=f"export:{job.pk}",
    )
    return {
        "message": f"{job.done:,} rows exported. The file is ready to download.",
        "back_url": params.get("back_url", ""),
    }
