"""Working together: comments with @mentions, watchers, the inbox's e-mail preferences and the daily digest."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from sync.schedules import ensure_schedules
from sync.tasks import send_email_digest_task
from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from workbench.errors import InvalidComment
from workbench.models import Comment, ExceptionItem, Notification, NotificationPreference, Watch
from workbench.models.exceptions import Status
from workbench.selectors.discussion import comment_thread
from workbench.services.comments import comment_add
from workbench.services.email_digest import notification_preference_set, notifications_digest_send
from workbench.services.exception_items import exception_item_raise, exception_item_transition
from workbench.services.item_actions import exception_item_assign
from workbench.services.notifications import notifications_send
from workbench.services.validation import documents_validate
from workbench.services.watchers import watch_set

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def item(db, jobs_sent, django_capture_on_commit_callbacks):
    master_data()
    master_data("NW-DE", "EUR")
    # As if committed: the raised items' after-commit work is done before the test's own transaction goes on.
    with django_capture_on_commit_callbacks(execute=True):
        doc = expense_report(lines=[expense_line(cost_center="")])
        documents_validate(documents=[doc])
    return ExceptionItem.objects.get(document=doc, code="MISSING_COST_CENTER")


@pytest.fixture
def people(item):
    return {
        "ana": make_person("ana", "Finance analysts"),
        "ben": make_person("ben", "Finance analysts"),
        "de": make_person("de.only", "Finance analysts", ["NW-DE"]),  # cannot see the US item
        "aud": make_person("aud", "Auditors"),
    }


def inbox(user, kind=None):
    qs = Notification.objects.filter(recipient=user)
    return list(qs.filter(kind=kind) if kind else qs)


# --- mentions --------------------------------------------------------------------------------------


def test_a_mention_tells_only_people_who_can_see_the_item(item, people):
    comment = comment_add(
        actor=people["ana"], item=item, body="@Ben please check, and @de.only too; @nobody is not a person."
    )
    assert comment.mentioned == ["ben"]
    [told] = inbox(people["ben"], "mention")
    assert told.title == f"ana mentioned you on MISSING_COST_CENTER #{item.pk}"
    assert told.url == f"/items/{item.pk}/" and told.item == item
    assert inbox(people["de"]) == []  # outside their entities: a plain word, no message
    assert inbox(people["ana"]) == []  # nobody is told of their own comment


def test_an_auditor_who_can_see_the_item_is_mentioned_and_an_inactive_person_is_not(item, people):
    people["ben"].is_active = False
    people["ben"].save()
    comment = comment_add(actor=people["ana"], item=item, body="@aud for the file. @ben has left.")
    assert comment.mentioned == ["aud"]
    assert len(inbox(people["aud"], "mention")) == 1 and inbox(people["ben"]) == []


def test_a_mention_on_a_document_links_to_the_document(item, people):
    doc = item.document
    comment_add(actor=people["ana"], document=doc, body="Hi @ben.")
    [told] = inbox(people["ben"], "mention")
    assert told.url == f"/documents/{doc.pk}/" and told.document == doc
    assert doc.events.filter(action="commented", actor=people["ana"]).exists()  # in the document's trace


def test_an_edit_is_a_new_comment_and_tells_only_newly_mentioned_people(item, people):
    first = comment_add(actor=people["ana"], item=item, body="@ben look")
    second = comment_add(actor=people["ana"], item=item, body="@ben look, and @aud", replaces=first)
    assert Comment.objects.count() == 2 and second.replaces == first
    assert [c.pk for c in comment_thread(item=item)] == [second.pk]  # the thread shows the latest version
    assert len(inbox(people["ben"], "mention")) == 1 and len(inbox(people["aud"], "mention")) == 1
    with pytest.raises(InvalidComment, match="Only its author"):
        comment_add(actor=people["ben"], item=item, body="mine now", replaces=second)
    with pytest.raises(InvalidComment, match="edited already"):
        comment_add(actor=people["ana"], item=item, body="again", replaces=first)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("", "Write something"),
        ("   \n\t ", "Write something"),
        ("bad\x00byte", "NUL byte"),
        ("x" * 10_001, "at most 10,000 characters; this one has 10,001"),
        ("x" * 10 * 1024 * 1024, "at most 10,000 characters"),
        (None, "is text"),
    ],
)
def test_hostile_bodies_are_refused_with_words_and_nothing_is_stored(item, people, body, words):
    with pytest.raises(InvalidComment, match=words):
        comment_add(actor=people["ana"], item=item, body=body)
    assert not Comment.objects.exists() and not Watch.objects.exists()


def test_a_comment_is_kept_as_typed_and_cannot_be_rewritten(item, people):
    comment = comment_add(actor=people["ana"], item=item, body="<script>alert(1)</script> 10,000.00 USD")
    assert Comment.objects.get().body == "<script>alert(1)</script> 10,000.00 USD"
    with pytest.raises(TypeError):
        Comment.objects.filter(pk=comment.pk).update(body="changed")


# --- watchers ---------------------------------------------------------------------------------------


def test_a_watcher_is_told_when_the_item_changes_status(item, people, django_capture_on_commit_callbacks):
    watch_set(user=people["ben"], item=item)
    with django_capture_on_commit_callbacks(execute=True):
        exception_item_transition(item=item, to=Status.WAITING, actor=people["ana"], reason="Sent back to Concur")
    [told] = inbox(people["ben"], "watch")
    assert told.title == f"MISSING_COST_CENTER #{item.pk}: open → waiting"
    assert "ana: Sent back to Concur" in told.body and told.url == f"/items/{item.pk}/"
    assert inbox(people["ana"]) == []  # the one who changed it is not told


def test_a_watcher_who_stopped_watching_or_lost_the_entity_is_not_told(
    item, people, django_capture_on_commit_callbacks
):
    watch_set(user=people["ben"], item=item)
    watch_set(user=people["ben"], item=item, on=False)
    Watch.objects.create(user=people["de"], item=item)  # watched once; their scope no longer holds NW-US
    with django_capture_on_commit_callbacks(execute=True):
        exception_item_transition(item=item, to=Status.WAITING, actor=people["ana"])
    assert inbox(people["ben"]) == [] and inbox(people["de"]) == []


def test_assigning_makes_both_people_watch_and_tells_the_assignee_once(
    item, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        exception_item_assign(item=item, assignee=people["ben"], actor=people["ana"])
    assert set(Watch.objects.filter(item=item).values_list("user__username", flat=True)) == {"ana", "ben"}
    [told] = inbox(people["ben"], "watch")  # the assignment and the status it caused: one message
    assert told.title == f"MISSING_COST_CENTER #{item.pk}: assigned to ben; open → in progress"
    assert inbox(people["ana"]) == []


def test_commenting_makes_you_watch_and_watchers_hear_of_comments(item, people):
    watch_set(user=people["ben"], item=item)
    comment_add(actor=people["ana"], item=item, body="Asked the employee for the cost center.")
    assert Watch.objects.filter(user=people["ana"], item=item, reason="commented").exists()
    [told] = inbox(people["ben"], "comment")
    assert told.title == f"ana commented on MISSING_COST_CENTER #{item.pk}"
    assert told.body == "Asked the employee for the cost center."
    comment_add(actor=people["ben"], item=item, body="Thanks @ana")
    assert [n.kind for n in inbox(people["ana"])] == ["mention"]  # mentioned and watching: told once


def test_watchers_of_a_document_hear_of_its_items(item, people, django_capture_on_commit_callbacks):
    watch_set(user=people["ben"], document=item.document)
    with django_capture_on_commit_callbacks(execute=True):
        exception_item_transition(item=item, to=Status.IN_PROGRESS, actor=people["ana"])
    assert len(inbox(people["ben"], "watch")) == 1


def test_watchers_of_a_document_hear_of_a_new_item_on_it(item, people, django_capture_on_commit_callbacks):
    watch_set(user=people["ben"], document=item.document)
    with django_capture_on_commit_callbacks(execute=True):
        raised = exception_item_raise(
            code="ERP_REJECTED", message="The period is closed", fp="test:erp", document=item.document
        )
    [told] = inbox(people["ben"], "watch")
    assert told.title == f"ERP_REJECTED #{raised.pk}: raised" and told.body == "The period is closed"


def test_a_status_change_nobody_watches_costs_one_query_per_transaction(
    item, people, django_capture_on_commit_callbacks
):
    master_data("NW-UK", "GBP")
    with django_capture_on_commit_callbacks(execute=True):
        docs = [expense_report(lines=[expense_line(cost_center="")]) for _ in range(5)]
        documents_validate(documents=docs)
    items = list(ExceptionItem.objects.filter(document__in=docs))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for i in items:
            exception_item_transition(item=i, to=Status.IN_PROGRESS)
    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()
    assert len(callbacks) == 1 and len(queries) == 1  # one batch, one look at the watch table


# --- e-mail: preference and digest ------------------------------------------------------------------


def test_a_person_who_chose_the_digest_gets_no_immediate_mail(
    item, people, mailoutbox, django_capture_on_commit_callbacks
):
    notification_preference_set(user=people["ben"], email="digest")
    notification_preference_set(user=people["aud"], email="off")
    with django_capture_on_commit_callbacks(execute=True):
        comment_add(actor=people["ana"], item=item, body="@ben and @aud, see this")
    assert mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        comment_add(actor=people["ben"], item=item, body="@ana here")  # ana: no preference = immediately
    assert [m.to for m in mailoutbox] == [["ana@example.com"]]


def test_the_daily_digest_mails_each_message_once(item, people, mailoutbox):
    notification_preference_set(user=people["ben"], email="digest")
    with time_machine.travel(NOW - timedelta(days=2), tick=False):
        notifications_send(recipients=[people["ben"]], kind="alert", title="Too old for the digest")
    with time_machine.travel(NOW - timedelta(hours=5), tick=False):
        comment_add(actor=people["ana"], item=item, body="@ben first")
        notifications_send(recipients=[people["ben"]], kind="alert", title="ERP down for 15 minutes")
        notifications_send(recipients=[people["ana"]], kind="alert", title="For ana, who is mailed at once")
    with time_machine.travel(NOW, tick=False):
        assert send_email_digest_task() == 1
        assert send_email_digest_task() == 0  # run again (a redelivered task): nothing mailed twice
    [mail] = mailoutbox
    assert mail.to == ["ben@example.com"] and mail.subject == "Workbench: 2 messages in the last day"
    assert "ana mentioned you" in mail.body and "ERP down for 15 minutes" in mail.body
    assert "Too old" not in mail.body and "For ana" not in mail.body
    assert f"/items/{item.pk}/" in mail.body
    assert not Notification.objects.filter(
        recipient=people["ben"], created_at__gt=NOW - timedelta(days=1), emailed_at=None
    ).exists()


def test_a_digest_that_cannot_be_sent_is_tried_again_next_time(item, people, mailoutbox, monkeypatch):
    notification_preference_set(user=people["ben"], email="digest")
    notifications_send(recipients=[people["ben"]], kind="alert", title="ERP down")

    def down(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr("workbench.services.email_digest.send_mail", down)
    assert notifications_digest_send() == 0
    monkeypatch.undo()
    assert notifications_digest_send() == 1 and len(mailoutbox) == 1


def test_an_unknown_preference_is_refused(item, people):
    with pytest.raises(Exception, match="Choose how to be mailed"):
        notification_preference_set(user=people["ben"], email="hourly\x00")
    assert not NotificationPreference.objects.exists()


def test_the_digest_has_a_daily_beat_entry_at_the_configured_hour(db, settings):
    ensure_schedules()
    task = PeriodicTask.objects.get(task="sync.send_email_digest")
    assert (task.crontab.minute, task.crontab.hour) == ("0", str(settings.DIGEST_HOUR))
