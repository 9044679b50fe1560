"""The Alerts screen: admins write rules, managers and engineers read them and the history."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from tests.conftest import make_person
from tests.factories import LegalEntityFactory
from workbench.models import AlertChatDelivery, AlertFiring, AlertRule, AuditRecord, ExceptionItem
from workbench.services.alerts import alert_rule_save, alerts_evaluate

RULE = {
    "name": "ERP down 10 min",
    "condition": "connection_down",
    "enabled": "on",
    "minutes": "10",
    "target": "role",
    "email": "on",
    "chat_format": "slack",
    "chat_url": "https://hooks.slack.com/services/T0/B0/secret",
}


@pytest.fixture
def engineers(db):
    return Group.objects.get(name="Integration engineers")


def test_an_admin_adds_a_rule_and_the_audit_trail_keeps_it_without_the_webhook(admin_client, engineers):
    page = admin_client.get("/alerts/rules/new/")
    assert page.status_code == 200 and b'name="chat_url"' in page.content
    response = admin_client.post("/alerts/rules/new/", {**RULE, "target_role": engineers.pk})
    assert response.status_code == 302 and response["Location"] == "/alerts/"
    rule = AlertRule.objects.get()
    assert (rule.condition, rule.minutes, rule.target_role, rule.email) == ("connection_down", 10, engineers, True)
    record = AuditRecord.objects.filter(source="workbench.AlertRule").get()
    assert record.data["after"]["minutes"] == 10 and "chat_url" not in record.data["after"]

    page = admin_client.get("/alerts/").content.decode()
    assert "ERP down 10 min" in page and "Connection down longer than 10 min" in page
    assert "Role: Integration engineers" in page and "hooks.slack.com" in page and "secret" not in page

    response = admin_client.post(f"/alerts/rules/{rule.pk}/", {**RULE, "target_role": engineers.pk, "minutes": "30"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.minutes == 30


@pytest.mark.parametrize("role", ["Finance managers", "Integration engineers"])
def test_managers_and_engineers_read_but_cannot_edit(client_as, role, engineers, admin_user):
    values = {**RULE, "enabled": True, "email": True, "minutes": 10, "target_role": engineers}
    rule = alert_rule_save(values=values, actor=admin_user)
    client = client_as("reader", role)
    page = client.get("/alerts/")
    assert page.status_code == 200 and b"ERP down 10 min" in page.content
    assert b"/alerts/rules/new/" not in page.content and f"/alerts/rules/{rule.pk}/".encode() not in page.content
    assert b"hooks.slack.com" in page.content and b"secret" not in page.content  # the host, not the webhook's key
    for odd in ("abc", "\x00", "9" * 40, str(rule.pk)):
        assert client.get("/alerts/", {"rule": odd}).status_code == 200
    assert client.post("/alerts/rules/new/", {**RULE, "target_role": engineers.pk}).status_code == 403
    assert client.post(f"/alerts/rules/{rule.pk}/", {**RULE, "minutes": "1"}).status_code == 403
    assert client.get(f"/alerts/rules/{rule.pk}/").status_code == 403
    rule.refresh_from_db()
    assert rule.minutes == 10 and AlertRule.objects.count() == 1


def test_analysts_and_auditors_do_not_see_alerts(client_as):
    assert client_as("a", "Finance analysts").get("/alerts/").status_code == 403
    assert client_as("u", "Auditors").get("/alerts/").status_code == 403


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"minutes": ""}, "minutes", "after how many minutes"),
        ({"condition": "amount_above", "amount": "1000", "currency": ""}, "currency", "ISO currency"),
        ({"condition": "amount_above", "amount": "1000", "currency": "EU"}, "currency", "ISO currency"),
        ({"condition": "amount_above", "amount": "9" * 30, "currency": "EUR"}, "amount", ""),
        ({"condition": "sla_breached", "code": "NO_SUCH_CODE"}, "code", "NO_SUCH_CODE"),
        ({"condition": "nonsense"}, "condition", ""),
        ({"name": "x" * 10_000_000}, "name", "at most 100"),
        ({"minutes": "99999999999999999999"}, "minutes", ""),
        ({"chat_url": "http://hooks.example.com/x"}, "chat_url", "plain http is only allowed to this machine"),
        ({"chat_url": "https://10.1.2.3/x"}, "chat_url", "inside our network"),
        ({"chat_format": "", "chat_url": "https://hooks.slack.com/x"}, "chat_format", "Slack or Teams"),
        ({"target": "person"}, "target_person", "Choose the person"),
        ({"target": "team", "target_team": "nobody"}, "target_team", ""),
    ],
)
def test_a_wrong_rule_is_explained_not_saved(admin_client, engineers, settings, change, field, words):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000_000  # let the 10 MB name reach the form
    response = admin_client.post("/alerts/rules/new/", {**RULE, "target_role": engineers.pk, **change})
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert words in " ".join(form.errors[field])
    assert b'data-testid="form-errors"' in response.content
    assert not AlertRule.objects.exists()


def test_a_nul_byte_in_a_name_does_not_reach_the_database(admin_client, engineers):
    response = admin_client.post("/alerts/rules/new/", {**RULE, "target_role": engineers.pk, "name": "ERP\x00 down"})
    assert response.status_code in (200, 302)
    assert list(AlertRule.objects.values_list("name", flat=True)) in ([], ["ERP down"])


def test_the_history_shows_who_was_told_and_the_chat_status_within_the_readers_entities(
    client, admin_user, django_capture_on_commit_callbacks
):
    managers = Group.objects.get(name="Finance managers")
    controller = make_person("controller", "Finance managers")
    de_manager = make_person("manager.de", "Finance managers", ["NW-DE"])
    us, de = LegalEntityFactory(code="NW-US"), LegalEntityFactory(code="NW-DE", currency="EUR")
    now = timezone.now()
    for entity, currency in ((us, "USD"), (de, "EUR")):
        ExceptionItem.objects.create(
            fingerprint=f"t:{entity.code}", code="ERP_REJECTED", category="posting", kind="business",
            message="refused", entity=entity, amount_at_risk=Decimal("50000"), currency=currency,
            owner_team="finance_expense", sla_due_at=now - timedelta(hours=1),
        )  # fmt: skip
    alert_rule_save(
        values={"name": "Late", "condition": "sla_breached", "target": "role", "target_role": managers,
                "chat_format": "teams", "chat_url": "https://example.webhook.office.com/x"},
        actor=admin_user,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        alerts_evaluate()
    de_firing = AlertFiring.objects.get(entity=de)
    AlertChatDelivery.objects.filter(firing=de_firing).update(
        status="failed", last_error="The chat server answered 503"
    )

    client.force_login(controller)
    page = client.get("/alerts/").content.decode()
    assert page.count('data-state="firing"') == 2
    us_firing = AlertFiring.objects.get(entity=us)
    told = response_cells(page, "told")
    assert told[de_firing.pk] == "controller, manager.de" and told[us_firing.pk] == "controller"  # scope decides
    assert "The chat server answered 503" in page and "pending" in page

    client.force_login(de_manager)
    page = client.get("/alerts/").content.decode()
    assert page.count('data-state="firing"') == 1 and f'data-firing="{de_firing.pk}"' in page


def response_cells(page: str, name: str) -> dict[int, str]:
    """Firing id -> the text of its `name` cell (tags dropped)."""
    cells = re.findall(rf'data-testid="{name}-(\d+)">(.*?)</td>', page)
    return {int(pk): re.sub(r"<[^>]+>", "", text) for pk, text in cells}


def test_evaluate_now_asks_the_worker(client_as, jobs_sent):
    client = client_as("oncall", "Integration engineers")
    assert client.post("/alerts/evaluate/").status_code == 302
    assert jobs_sent == [("sync.evaluate_alerts", {})]


def test_changing_a_rules_condition_drops_the_old_threshold_and_target(admin_client, engineers):
    admin_client.post("/alerts/rules/new/", {**RULE, "target_role": engineers.pk})
    rule = AlertRule.objects.get()
    change = {"condition": "amount_above", "amount": "5000", "currency": "eur", "target": "team",
              "target_team": "accounts_payable", "target_role": engineers.pk}  # fmt: skip
    assert admin_client.post(f"/alerts/rules/{rule.pk}/", {**RULE, **change}).status_code == 302
    rule.refresh_from_db()
    assert (rule.minutes, rule.amount, rule.currency) == (None, Decimal("5000"), "EUR")
    assert (rule.target_role, rule.target_team) == (None, "accounts_payable")
