"""An admin fixes a whole group with one mapping rule, in Chromium, with a real worker: test the rule,
see its impact, save, watch the progress, see the queue shrink; every freed report is posted once."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from sync.jobs import run_job
from sync.models import SyncRun
from tests.conftest import wait_until
from tests.support.browser import login
from tests.support.pipeline import drain_outbox
from workbench.models import ExceptionItem, MappingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_one_rule_resolves_a_group_and_each_report_is_posted_once(
    live_server, page, sandboxes, connections, worker_factory, admin_user
):
    erp, expense = connections
    run_job(SyncRun.objects.create(connection=erp, job="master_data"))
    run_job(SyncRun.objects.create(connection=expense, job="expense_pull"))
    drain_outbox()
    item = ExceptionItem.objects.filter(code="UNKNOWN_COST_CENTER", status="open", detail__value="SALE").first()
    assert item is not None, "the seeded world plants the SALE typo"
    group = list(ExceptionItem.objects.filter(group=item.group, status="open"))
    docs = {i.document_id for i in group}
    # the reports held only by this typo are the ones that must post
    freed = {
        d
        for d in docs
        if not ExceptionItem.objects.filter(document_id=d, status="open").exclude(group=item.group).exists()
    }
    before_postings = Counter(sandboxes["erp"].get("/sandbox/stats")["documents"])
    worker_factory("w1")

    login(page, live_server.url, "admin", "admin")
    page.goto(f"{live_server.url}/items/{item.pk}/")
    assert f"{len(group)} open item" in page.locator("[data-testid=group-stats]").inner_text()
    page.click("[data-testid=fix-all]")
    page.wait_for_url(re.compile(r".*/mappings/\?.*source_value=SALE.*"))
    page.fill("input[name=target_value]", "SALES")
    page.fill("input[name=reason]", "Concur's old spelling of Sales")
    # pre-filled for the whole group (any source); narrowed to another source, the preview says what it leaves out
    assert page.input_value("input[name=source_system]") == ""
    page.fill("input[name=source_system]", "coupa")
    page.click("[data-testid=test-rule]")
    left = page.locator("[data-testid=impact-left-out]")
    left.wait_for()
    assert f"Leaves {len(group)} item" in left.inner_text() and "of this root cause" in left.inner_text()
    assert "documents from concur" in left.inner_text()
    page.fill("input[name=source_system]", "")
    page.click("[data-testid=test-rule]")
    page.locator("[data-testid=impact-items]", has_text=str(len(group))).wait_for()
    assert page.locator("[data-testid=impact-left-out]").count() == 0
    assert page.locator("[data-testid=impact-documents]").inner_text() == str(len(docs))
    page.click("[data-testid=save-rule]")
    page.locator("[data-testid=run-progress]").wait_for()
    page.locator("[data-testid=run-progress]", has_text="Done").wait_for(timeout=60_000)
    assert page.locator("[data-testid=run-resolved]").inner_text() == str(len(group))
    run = MappingRun.objects.get()
    assert run.resolved == len(group)

    # the queue shrank by the whole group, and the rule is named as the cause
    for i in ExceptionItem.objects.filter(pk__in=[g.pk for g in group]):
        assert i.status == "resolved" and "mapping rule" in i.events.last().reason
    page.goto(f"{live_server.url}/queue/?code=UNKNOWN_COST_CENTER&q=sale")
    assert page.locator(f"tr[data-item='{item.pk}']").count() == 0

    from workbench.models import Document

    wait_until(
        lambda: Document.objects.filter(pk__in=freed, financial_status__in=["posted", "paid"]).count() == len(freed),
        90,
        message="the freed reports to be posted",
    )
    stats = Counter(sandboxes["erp"].get("/sandbox/stats")["documents"])
    new = {k: v for k, v in stats.items() if v != before_postings.get(k)}
    assert len(new) >= len(freed) and all(v == 1 for v in new.values())  # each report posted exactly once
