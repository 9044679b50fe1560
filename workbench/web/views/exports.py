"""Downloads of what a screen shows: the queue, documents, overrides, accruals and budgets as CSV or XLSX.

Each takes the screen's own query string and exports exactly the rows that screen shows the person
(same filters, same entity scope, same order, every page). Up to EXPORT_BACKGROUND_ROWS rows the file
comes straight back (CSV streamed; XLSX written to a temporary file first); above, a background job
writes it and the person follows its progress at /jobs/<id>/.
"""

import tempfile

from django.conf import settings
from django.http import FileResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from workbench.export_sources import export_source
from workbench.exports import CONTENT_TYPES, csv_chunks, file_name, xlsx_write
from workbench.services.work_jobs import work_job_start
from workbench.web.views.queue import queue_filter_data

MAX_QUERY = 4000  # a screen's filters fit in far less; a longer query string is not a screen's


def export(request, *, source: str, fmt: str, back: str = ""):
    if source == "queue":
        data, _ = queue_filter_data(request)  # the defaults the queue applies (status, role's view) too
    else:
        data = request.GET.copy()
    data.pop("page", None)
    data.pop("format", None)
    query = data.urlencode()
    if len(query) > MAX_QUERY or "\x00" in query:
        return HttpResponseBadRequest("These filters are too long (or hold a NUL character) to export.")
    found = export_source(source, request.user, data)
    count = found.count()
    if count > settings.EXPORT_BACKGROUND_ROWS:
        # "Back" on the job page returns to the screen as it was filtered.
        back_url = f"{reverse(back)}?{request.GET.urlencode()}" if back else ""
        job = work_job_start(
            kind="export",
            title=f"{found.title}: {count:,} rows as {fmt.upper()}",
            params={"source": source, "format": fmt, "query": query, "back_url": back_url},
            actor=request.user,
            total=count,
        )
        return redirect("jobs:detail", job.pk)
    name = file_name(found, fmt, timezone.localdate())
    if fmt == "csv":
        response = StreamingHttpResponse(csv_chunks(found), content_type=CONTENT_TYPES["csv"])
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    # openpyxl needs a file to zip the sheet into; the open handle outlives the unlinked name.
    handle = tempfile.TemporaryFile(suffix=".xlsx")
    xlsx_write(found, handle)
    handle.seek(0)
    return FileResponse(handle, as_attachment=True, filename=name, content_type=CONTENT_TYPES["xlsx"])
