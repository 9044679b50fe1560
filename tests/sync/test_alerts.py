"""Alerts through the worker's path: rules evaluated every minute, inbox and mail, chat webhooks
posted to a local receiver (a real HTTP server in a thread, Slack and Teams shapes)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail

from connectors.base import ConfigError, TransientError
from sync import tasks
from sync.health import record_failure, record_success
from tests.conftest import make_person
from tests.factories import LegalEntityFactory
from workbench.models import AlertChatDelivery, AlertFiring, AlertRule, Connection, ExceptionItem, Notification
from workbench.services import alerts
from workbench.services.alerts import alert_rule_save, alerts_evaluate

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Receiver:
    """A chat server on localhost: records each JSON body; answers the queued statuses, then 200."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no_service")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.ALERT_CHAT_BACKOFF = 0.01
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def erp(db):
    return Connection.objects.create(name="Business Central (ERP)", kind="business_central", role="erp")


def _rule(actor, **values) -> AlertRule:
    base = {"target": "role", "target_role": Group.objects.get(name="Integration engineers")}
    return alert_rule_save(values={"name": "Rule", **base, **values}, actor=actor)


def _run_at(moment, capture):
    """One evaluator run (the beat task) at this moment, mails sent as its transactions commit."""
    with time_machine.travel(moment, tick=False), capture(execute=True):
        return tasks.evaluate_alerts_task()


def _item(entity, *, amount="100", currency="USD", sla_due_at=None, code="MISSING_COST_CENTER", team="finance_expense"):
    n = ExceptionItem.objects.count() + 1
    return ExceptionItem.objects.create(
        fingerprint=f"test:{n}",
        code=code,
        category="master_data",
        kind="business",
        message=f"item {n}",
        entity=entity,
        amount_at_risk=Decimal(amount),
        currency=currency,
        owner_team=team,
        sla_due_at=sla_due_at or T0 + timedelta(days=2),
        opened_at=T0 - timedelta(days=1),
    )


def test_a_sustained_outage_fires_once_and_says_once_that_it_is_resolved(
    erp, receiver, admin_user, django_capture_on_commit_callbacks
):
    engineer = make_person("oncall", "Integration engineers")
    analyst = make_person("analyst", "Finance analysts")
    _rule(admin_user, name="ERP down", condition="connection_down", minutes=5, email=True,
          chat_format="slack", chat_url=receiver.url)  # fmt: skip
    with time_machine.travel(T0, tick=False):
        record_failure(erp, ConfigError("401 Unauthorized"))
    erp.refresh_from_db()
    assert erp.health == "down" and erp.down_since == T0

    assert _run_at(T0 + timedelta(minutes=2), django_capture_on_commit_callbacks)["fired"] == 0  # not 5 minutes yet
    runs = [_run_at(T0 + timedelta(minutes=m), django_capture_on_commit_callbacks) for m in (6, 7, 8, 30)]
    assert [r["fired"] for r in runs] == [1, 0, 0, 0]
    inbox = Notification.objects.filter(recipient=engineer)
    assert [n.kind for n in inbox] == ["alert"]
    assert "Business Central (ERP) is down since 2026-12-07 09:00 UTC" in inbox[0].title
    assert not Notification.objects.filter(recipient=analyst).exists()  # the rule tells engineers
    assert [m.to for m in mail.outbox] == [["oncall@example.com"]]
    assert len(receiver.bodies) == 1 and "is down" in receiver.bodies[0]["text"]

    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        record_success(erp)
    runs = [_run_at(T0 + timedelta(minutes=m), django_capture_on_commit_callbacks) for m in (32, 33)]
    assert [r["resolved"] for r in runs] == [1, 0]
    assert sorted(inbox.values_list("kind", flat=True)) == ["alert", "alert_resolved"]
    assert inbox.get(kind="alert_resolved").title.startswith("Resolved: ERP down")
    assert len(mail.outbox) == 2 and mail.outbox[1].subject.startswith("Resolved:")
    assert len(receiver.bodies) == 2 and receiver.bodies[1]["text"].startswith("Resolved:")
    firing = AlertFiring.objects.get()
    assert firing.resolved_at == T0 + timedelta(minutes=32)
    assert list(firing.chats.values_list("phase", "status")) == [("fired", "sent"), ("resolved", "sent")]

    # The ERP goes down again: a new firing, told again.
    with time_machine.travel(T0 + timedelta(minutes=40), tick=False):
        record_failure(erp, ConfigError("401 Unauthorized"))
    _run_at(T0 + timedelta(minutes=50), django_capture_on_commit_callbacks)
    assert AlertFiring.objects.count() == 2 and inbox.filter(kind="alert").count() == 2


def test_transient_failures_set_down_since_only_when_the_connection_goes_down(erp, settings):
    settings.SYNC_OUTAGE_THRESHOLD = 2
    with time_machine.travel(T0, tick=False):
        record_failure(erp, TransientError("timeout"))
    erp.refresh_from_db()
    assert erp.down_since is None
    for minute in (1, 2):
        with time_machine.travel(T0 + timedelta(minutes=minute), tick=False):
            record_failure(erp, TransientError("timeout"))
    erp.refresh_from_db()
    assert erp.down_since == T0 + timedelta(minutes=1)  # the outage started at the failure that took it down


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_the_chat_webhook_receives_the_alert_in_its_chats_shape(
    fmt, receiver, admin_user, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_URL = "https://workbench.example.com"
    us = LegalEntityFactory(code="NW-US")
    item = _item(us, amount="25000", currency="USD")
    _rule(admin_user, name="Big <USD> items", condition="amount_above", amount=Decimal("10000"), currency="USD",
          chat_format=fmt, chat_url=receiver.url)  # fmt: skip
    _run_at(T0, django_capture_on_commit_callbacks)

    (body,) = receiver.bodies
    link = f"https://workbench.example.com/items/{item.pk}/"
    if fmt == "slack":
        # Slack reads <...> as markup (<!channel> pings everyone): a rule's words are escaped.
        assert body["text"].startswith("Big &lt;USD&gt; items: 25,000.00 USD at risk: MISSING_COST_CENTER")
        assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": f"*{body['text']}*"}}
        assert body["blocks"][-1]["elements"][0]["url"] == link
    else:
        assert body["@type"] == "MessageCard" and body["@context"] == "https://schema.org/extensions"
        assert body["summary"] == body["title"] and body["title"].startswith("Big <USD> items: 25,000.00 USD")
        assert body["themeColor"] and body["text"] == "item 1"
        assert body["potentialAction"][0]["targets"][0]["uri"] == link


def test_a_chat_server_that_fails_is_retried_then_recorded_and_the_evaluator_carries_on(
    erp, receiver, admin_user, django_capture_on_commit_callbacks
):
    make_person("oncall", "Integration engineers")
    _rule(
        admin_user, name="ERP down", condition="connection_down", minutes=1, chat_format="teams", chat_url=receiver.url
    )
    _rule(admin_user, name="ERP down (slack)", condition="connection_down", minutes=1, chat_format="slack",
          chat_url=receiver.url)  # fmt: skip
    with time_machine.travel(T0, tick=False):
        record_failure(erp, ConfigError("401"))
    receiver.statuses = [503, 503, 503, 500]  # the first message fails three times; the second once, then goes
    summary = _run_at(T0 + timedelta(minutes=5), django_capture_on_commit_callbacks)

    assert (summary["fired"], summary["chat_sent"], summary["chat_failed"]) == (2, 1, 1)
    failed, sent = AlertChatDelivery.objects.order_by("id")
    assert (failed.status, failed.attempts) == ("failed", 3) and "503" in failed.last_error
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, "")
    assert Notification.objects.filter(kind="alert").count() == 2  # the inbox was told regardless
    assert len(receiver.bodies) == 5
    _run_at(T0 + timedelta(minutes=6), django_capture_on_commit_callbacks)
    assert len(receiver.bodies) == 5  # a failed message is not sent again every minute


def test_a_refused_or_unreachable_webhook_is_recorded_not_raised(
    receiver, admin_user, django_capture_on_commit_callbacks
):
    us = LegalEntityFactory(code="NW-US")
    _item(us, amount="25000")
    rule = _rule(admin_user, name="Big", condition="amount_above", amount=Decimal("1"), currency="USD",
                 chat_format="slack", chat_url=receiver.url)  # fmt: skip
    receiver.statuses = [404]
    _run_at(T0, django_capture_on_commit_callbacks)
    delivery = AlertChatDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1) and "404" in delivery.last_error  # no retry on 4xx

    # A row written before the URL check existed (or edited in the database) is refused at send time.
    AlertRule.objects.filter(pk=rule.pk).update(chat_url="http://169.254.169.254/latest/meta-data")
    _item(us, amount="30000")
    _run_at(T0 + timedelta(minutes=1), django_capture_on_commit_callbacks)
    refused = AlertChatDelivery.objects.order_by("id").last()
    assert refused.status == "failed" and "https" in refused.last_error and len(receiver.bodies) == 1


def test_the_amount_rule_only_looks_at_items_in_its_currency(admin_user, django_capture_on_commit_callbacks):
    manager = make_person("controller", "Finance managers")
    us, de = LegalEntityFactory(code="NW-US"), LegalEntityFactory(code="NW-DE", currency="EUR")
    big_eur = _item(de, amount="20000", currency="EUR")
    _item(de, amount="5000", currency="EUR")
    _item(us, amount="50000", currency="USD")  # a bigger number, but dollars: never compared with euros
    _item(us, amount="990000", currency="JPY")
    _rule(admin_user, name="Large EUR", condition="amount_above", amount=Decimal("10000"), currency="EUR",
          target_role=Group.objects.get(name="Finance managers"))  # fmt: skip
    _run_at(T0, django_capture_on_commit_callbacks)

    assert list(AlertFiring.objects.values_list("item", flat=True)) == [big_eur.pk]
    (note,) = Notification.objects.filter(recipient=manager)
    assert note.item == big_eur and "20,000.00 EUR" in note.title


def test_an_entity_filtered_rule_only_tells_about_its_entity_and_only_people_who_work_on_it(
    admin_user, django_capture_on_commit_callbacks
):
    de_only = make_person("analyst.de", "Finance analysts", ["NW-DE"])
    us_only = make_person("analyst.us", "Finance analysts", ["NW-US"])
    everywhere = make_person("analyst.all", "Finance analysts")
    de, us = LegalEntityFactory(code="NW-DE"), LegalEntityFactory(code="NW-US")
    late_de = _item(de, sla_due_at=T0 - timedelta(hours=1))
    _item(us, sla_due_at=T0 - timedelta(hours=1))
    _item(de, sla_due_at=T0 + timedelta(hours=1))  # not late yet
    analysts = Group.objects.get(name="Finance analysts")
    _rule(admin_user, name="Late in Germany", condition="sla_breached", entity=de, target_role=analysts)
    _run_at(T0, django_capture_on_commit_callbacks)

    assert list(AlertFiring.objects.values_list("item", flat=True)) == [late_de.pk]
    told = set(Notification.objects.values_list("recipient__username", flat=True))
    assert told == {de_only.username, everywhere.username}
    assert not Notification.objects.filter(recipient=us_only).exists()


def test_a_team_is_told_about_its_own_items(admin_user, django_capture_on_commit_callbacks):
    engineer = make_person("oncall", "Integration engineers")
    analyst = make_person("ap", "Finance analysts")
    us = LegalEntityFactory(code="NW-US")
    ours = _item(us, sla_due_at=T0 - timedelta(hours=1), code="POSTING_FAILED", team="integration")
    _item(us, sla_due_at=T0 - timedelta(hours=1))
    _rule(admin_user, name="Integration late", condition="sla_breached", target="team", target_team="integration")
    _run_at(T0, django_capture_on_commit_callbacks)
    assert list(Notification.objects.values_list("recipient", "item")) == [(engineer.pk, ours.pk)]
    assert not Notification.objects.filter(recipient=analyst).exists()


def test_the_backlog_rule_compares_now_with_its_sample_n_hours_ago(admin_user, django_capture_on_commit_callbacks):
    manager = make_person("controller", "Finance managers")
    us = LegalEntityFactory(code="NW-US")
    _item(us)
    _rule(admin_user, name="Backlog", condition="backlog_growth", hours=1, growth=2,
          target_role=Group.objects.get(name="Finance managers"))  # fmt: skip
    _run_at(T0, django_capture_on_commit_callbacks)
    new = [_item(us) for _ in range(3)]
    assert _run_at(T0 + timedelta(minutes=30), django_capture_on_commit_callbacks)["fired"] == 0  # no hour of history
    assert _run_at(T0 + timedelta(minutes=61), django_capture_on_commit_callbacks)["fired"] == 1  # 1 -> 4: +3 > 2
    (note,) = Notification.objects.filter(recipient=manager)
    assert "backlog of NW-US grew by 3 in 1 h" in note.title and note.url == "/queue/?entity=NW-US"
    ExceptionItem.objects.filter(pk__in=[i.pk for i in new]).update(status="resolved")
    assert _run_at(T0 + timedelta(minutes=62), django_capture_on_commit_callbacks)["resolved"] == 1


def test_close_risk_fires_inside_its_window(admin_user, django_capture_on_commit_callbacks):
    analyst = make_person("analyst", "Finance analysts")
    us = LegalEntityFactory(code="NW-US")
    soon, later = _item(us), _item(us)
    ExceptionItem.objects.filter(pk=soon.pk).update(close_due_at=T0 + timedelta(hours=20))
    ExceptionItem.objects.filter(pk=later.pk).update(close_due_at=T0 + timedelta(days=5))
    _rule(
        admin_user,
        name="Close",
        condition="close_risk",
        hours=24,
        target_role=Group.objects.get(name="Finance analysts"),
    )
    _run_at(T0, django_capture_on_commit_callbacks)
    assert list(Notification.objects.filter(recipient=analyst).values_list("item", flat=True)) == [soon.pk]


def test_two_evaluators_claiming_one_subject_fire_it_once(admin_user, django_capture_on_commit_callbacks):
    """The second insert of an open firing for the same subject fails on the unique constraint."""
    analyst = make_person("analyst", "Finance analysts")
    us = LegalEntityFactory(code="NW-US")
    item = _item(us, sla_due_at=T0 - timedelta(hours=1))
    rule = _rule(
        admin_user, name="Late", condition="sla_breached", target_role=Group.objects.get(name="Finance analysts")
    )
    subject = alerts._describe(rule, {f"item:{item.pk}": item.pk})[0]
    with django_capture_on_commit_callbacks(execute=True):
        assert [alerts._fire(rule, subject, T0), alerts._fire(rule, subject, T0)] == [True, False]
    assert AlertFiring.objects.count() == 1 and Notification.objects.filter(recipient=analyst).count() == 1
    firing = AlertFiring.objects.get()
    assert alerts._resolve(firing, T0, resolution="cleared", tell=True) is True
    assert alerts._resolve(firing, T0, resolution="cleared", tell=True) is False
    assert Notification.objects.filter(recipient=analyst, kind="alert_resolved").count() == 1


def test_switching_a_rule_off_closes_its_firings_quietly(admin_user, django_capture_on_commit_callbacks):
    analyst = make_person("analyst", "Finance analysts")
    us = LegalEntityFactory(code="NW-US")
    _item(us, sla_due_at=T0 - timedelta(hours=1))
    rule = _rule(
        admin_user, name="Late", condition="sla_breached", target_role=Group.objects.get(name="Finance analysts")
    )
    _run_at(T0, django_capture_on_commit_callbacks)
    alert_rule_save(rule=rule, values={"enabled": False}, actor=admin_user)
    _run_at(T0 + timedelta(minutes=1), django_capture_on_commit_callbacks)
    assert AlertFiring.objects.get().resolution == "rule switched off"
    assert list(Notification.objects.filter(recipient=analyst).values_list("kind", flat=True)) == ["alert"]


def test_many_matching_items_fire_in_batches_with_a_bounded_number_of_queries(
    admin_user, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(alerts, "MAX_CHANGES_PER_RUN", 5)
    us = LegalEntityFactory(code="NW-US")
    items = [_item(us, sla_due_at=T0 - timedelta(hours=1)) for _ in range(40)]
    _rule(admin_user, name="Late", condition="sla_breached", target_role=Group.objects.get(name="Finance analysts"))
    with time_machine.travel(T0, tick=False), django_assert_max_num_queries(60):
        assert alerts_evaluate()["fired"] == 5
    ExceptionItem.objects.filter(pk__in=[i.pk for i in items]).update(status="resolved")
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False), django_assert_max_num_queries(60):
        assert alerts_evaluate()["resolved"] == 5


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.slack.com/services/T0/B0/x", True),
        ("https://example.webhook.office.com/webhookb2/abc", True),
        ("http://127.0.0.1:9000/hook", True),
        ("http://localhost/hook", True),
        ("http://hooks.slack.com/services/x", False),  # plain http off this machine
        ("https://10.0.0.8/hook", False),  # inside our network
        ("https://169.254.169.254/latest/meta-data", False),  # cloud metadata
        ("https://[::1]/hook", False),
        ("https://localhost/hook", False),
        ("https://user:pw@hooks.slack.com/x", False),
        ("ftp://hooks.slack.com/x", False),
        ("https://hooks.slack.com/x\x00", False),
        ("https://" + "a" * 600, False),
        ("not a url", False),
    ],
)
def test_webhook_urls_are_https_to_a_public_host(url, ok, admin_user):
    make = lambda: _rule(admin_user, name="x", condition="sla_breached", chat_format="slack", chat_url=url)  # noqa: E731
    if ok:
        assert make().chat_url == url
    else:
        with pytest.raises(alerts.AlertRuleInvalid) as err:
            make()
        assert "chat_url" in err.value.errors
