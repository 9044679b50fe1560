"""The Sync page followed in the browser: "Run now" shows the run's progress and how it ended."""

import pytest

from tests.support.browser import login
from workbench.models import Connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_run_that_fails_shows_failed_in_its_row_without_a_reload(live_server, page, worker_factory, admin_user):
    # Settings the connector refuses at once: the run fails for a reason a person can act on.
    Connection.objects.create(
        name="Business Central (ERP)",
        kind="business_central",
        role="erp",
        config={"base_url": "ftp://erp.example", "client_id": "x", "client_secret": "y"},
    )
    worker_factory("w1")
    login(page, live_server.url, "admin", "admin")
    page.goto(f"{live_server.url}/sync/")
    row = page.locator('section[data-connection="Business Central (ERP)"] tr[data-job="master_data"]')
    row.get_by_role("button", name="Run now").click()
    # The run's progress shows at once; when it ends, the job's row is redrawn without a reload and
    # says it failed, and why, in words.
    page.wait_for_selector(".run-progress", timeout=10_000)
    row = page.locator('section[data-connection="Business Central (ERP)"] tr[data-job="master_data"]')
    row.locator(".status.run-failed").wait_for(timeout=30_000)
    text = row.inner_text()
    assert "running" not in text and "base_url" in text and "ConfigError" not in text
