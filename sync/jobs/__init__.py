"""The pull jobs a schedule (or "Run now") starts, one module each; `run_job` runs one as a recorded run.

A job reads pages from a connector and hands them to domain services, page by page in one
transaction with its cursor; what a document means for the ledger is the domain's business.
"""

from __future__ import annotations

from sync.jobs.approvals import pull_approvals
from sync.jobs.erp_status import pull_posting_status
from sync.jobs.expenses import pull_expense_reports
from sync.jobs.identity import pull_identity
from sync.jobs.master_data import pull_master_data
from sync.jobs.procurement import pull_procurement
from sync.models import SyncRun
from sync.runs import run_recorded

JOBS = {
    SyncRun.Job.MASTER_DATA: pull_master_data,
    SyncRun.Job.EXPENSE_PULL: pull_expense_reports,
    SyncRun.Job.POSTING_STATUS: pull_posting_status,
    SyncRun.Job.PROCUREMENT_PULL: pull_procurement,
    SyncRun.Job.APPROVALS_PULL: pull_approvals,
    SyncRun.Job.IDENTITY_PULL: pull_identity,
}


def run_job(run: SyncRun) -> SyncRun:
    """Run one job to the end and record how it went. Never raises for vendor trouble."""
    return run_recorded(run, job=run.job, body=lambda: JOBS[run.job](run))
