"""Background jobs a person asked for: run once, progress on screen, file only for the asker."""

from django.conf import settings
from django.test import Client

from tests.conftest import make_person
from workbench.models import WorkJob
from workbench.services import work_jobs
from workbench.services.notifications import notifications_mark_read, notifications_send


def _writer(job, progress):
    out = work_jobs_dir(job) / f"job-{job.pk}.csv"
    for i in range(1, 4):
        progress(i, 3)
    out.write_text("a,b\n1,2\n")
    job.file_path, job.file_name, job.content_type = str(out), "rows.csv", "text/csv"
    return {"message": "3 rows written", "calls": job.result.get("calls", 0) + 1}


def work_jobs_dir(job):
    settings.WORK_JOB_DIR.mkdir(parents=True, exist_ok=True)
    return settings.WORK_JOB_DIR


def test_a_job_runs_once_and_only_its_asker_can_see_and_download_it(db, settings, tmp_path, monkeypatch, jobs_sent):
    settings.WORK_JOB_DIR = tmp_path
    monkeypatch.setitem(work_jobs.HANDLERS, "test_export", _writer)
    asker = make_person("asker", "Finance analysts")
    other = make_person("other", "Finance analysts")
    job = work_jobs.work_job_start(kind="test_export", title="Export", params={}, actor=asker)
    assert jobs_sent == [("sync.run_work_job", {"job_id": job.pk})]

    assert work_jobs.work_job_run(job.pk) == "done"
    assert work_jobs.work_job_run(job.pk) == "gone"  # a second delivery does nothing
    job.refresh_from_db()
    assert (job.status, job.done, job.total, job.message, job.result["calls"]) == ("done", 3, 3, "3 rows written", 1)

    c = Client()
    c.force_login(asker)
    page = c.get(f"/jobs/{job.pk}/progress/")
    assert page.status_code == 286  # htmx: stop polling, it is finished
    assert b"Download rows.csv" in page.content
    download = c.get(f"/jobs/{job.pk}/download/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"a,b\n1,2\n"

    c.force_login(other)
    assert c.get(f"/jobs/{job.pk}/").status_code == 404
    assert c.get(f"/jobs/{job.pk}/download/").status_code == 404


def test_a_failing_job_says_so(db, monkeypatch, jobs_sent):
    def broken(job, progress):
        raise RuntimeError("disk full")

    monkeypatch.setitem(work_jobs.HANDLERS, "test_broken", broken)
    job = work_jobs.work_job_start(kind="test_broken", title="x", params={}, actor=make_person("a", "Finance analysts"))
    assert work_jobs.work_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == WorkJob.Status.FAILED and "disk full" in job.message


def test_a_keyed_message_reaches_each_person_once(db):
    a, b = make_person("a", "Finance analysts"), make_person("b", "Finance managers")
    assert len(notifications_send(recipients=[a, b], kind="alert", title="ERP down", key="alert:1")) == 2
    assert notifications_send(recipients=[a, b.pk], kind="alert", title="ERP down", key="alert:1") == []
    assert a.notifications.count() == 1
    assert notifications_mark_read(user=a) == 1
    assert b.notifications.filter(read_at__isnull=True).count() == 1


def test_a_message_asked_to_be_mailed_is_mailed_once_after_commit(db, mailoutbox, django_capture_on_commit_callbacks):
    a = make_person("a", "Finance analysts")
    with django_capture_on_commit_callbacks(execute=True):
        notifications_send(recipients=[a], kind="alert", title="ERP down", body="BC is not answering", url="/sync/",
                           key="alert:2", email=True)  # fmt: skip
    assert [m.subject for m in mailoutbox] == ["ERP down"]
    assert "BC is not answering" in mailoutbox[0].body and "/sync/" in mailoutbox[0].body
    assert a.notifications.get().emailed_at is not None
