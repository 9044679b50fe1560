"""The ERP's accounting periods arrive with the master-data sync, each with its close dates."""

from __future__ import annotations

import pytest

from tests.support.pipeline import run
from workbench.models import AccountingPeriod
from workbench.models.calendars import CloseTimetable

pytestmark = pytest.mark.django_db


def test_every_synced_period_has_its_close_dates(conns):
    erp, _ = conns

    sync = run(erp, "master_data")

    assert sync.status == "succeeded", sync.message
    periods = AccountingPeriod.objects.all()
    assert periods.count() > 0
    timetables = {t.period_id: t for t in CloseTimetable.objects.all()}
    assert set(timetables) == set(periods.values_list("pk", flat=True))
    for p in periods:
        t = timetables[p.pk]
        # Cut-offs and the close fall after the period's end by default, in that order.
        assert p.end < t.expense_cutoff_at.date() <= t.ap_cutoff_at.date() <= t.close_at.date()
    again = run(erp, "master_data")
    assert again.status == "succeeded" and CloseTimetable.objects.count() == periods.count()
