"""A background job someone asked for: its page, its progress bar (polled), and its file.

Only the person who asked (or an admin) sees a job: an export holds the rows of their own scope,
and its file is theirs. Anyone else gets 404, as if the job did not exist.
"""

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django_htmx.http import HttpResponseStopPolling

from workbench.models import WorkJob


def _own_job(request, pk) -> WorkJob:
    job = get_object_or_404(WorkJob.objects.select_related("requested_by"), pk=pk)
    if job.requested_by_id != request.user.pk and not request.user.is_superuser:
        raise Http404("No such job")
    return job


def job_detail(request, pk):
    return render(request, "workbench/work_job.html", {"job": _own_job(request, pk)})


def job_progress(request, pk):
    job = _own_job(request, pk)
    response = render(request, "workbench/work_job.html#progress", {"job": job})
    return HttpResponseStopPolling(response.content) if job.finished else response


def job_download(request, pk):
    job = _own_job(request, pk)
    if job.status != WorkJob.Status.DONE or not job.file_path:
        raise Http404("This job has no file (yet)")
    path = Path(job.file_path).resolve()
    # The path was written by the worker; refuse anything outside the jobs folder all the same.
    if Path(settings.WORK_JOB_DIR).resolve() not in path.parents or not path.is_file():
        raise Http404("The file is gone")
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=job.file_name or path.name, content_type=job.content_type or None
    )
