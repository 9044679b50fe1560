"""Comments, watching and the inbox on the screens and in the API, as each role sees them."""

import json

import pytest

from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from workbench.models import Comment, ExceptionItem, Notification, NotificationPreference, Watch
from workbench.services.comments import comment_add
from workbench.services.notifications import notifications_send
from workbench.services.validation import documents_validate

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def item(db, jobs_sent):
    master_data()
    master_data("NW-DE", "EUR")
    doc = expense_report(lines=[expense_line(cost_center="")])
    documents_validate(documents=[doc])
    return ExceptionItem.objects.get(document=doc, code="MISSING_COST_CENTER")


@pytest.fixture
def ana(item):
    return make_person("ana", "Finance analysts")


@pytest.fixture
def ben(item):
    return make_person("ben", "Finance analysts")


def test_an_analyst_posts_a_comment_and_it_appears_in_the_thread_without_reload(client, item, ana, ben):
    client.force_login(ana)
    page = client.get(f"/items/{item.pk}/").content.decode()
    assert 'data-testid="discussion"' in page and "No comments yet." in page
    response = client.post(f"/items/{item.pk}/comments/", {"body": "@ben <b>check</b> the receipt"}, **HX)
    assert response.status_code == 200 and "toast" in response["HX-Trigger"]
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card discussion" id="discussion"')  # the partial, not the page
    assert (
        '<strong class="mention">@ben</strong> &lt;b&gt;check&lt;/b&gt; the receipt' in html
    )  # escaped, mention marked
    assert "Watching: ana" in html and "Stop watching" in html
    assert Notification.objects.filter(recipient=ben, kind="mention").count() == 1


def test_a_refused_comment_keeps_the_text_and_says_why(client, item, ana):
    client.force_login(ana)
    response = client.post(f"/items/{item.pk}/comments/", {"body": "x" * 10_001}, **HX)
    assert response.status_code == 200 and "at most 10,000 characters; this one has 10,001" in response.content.decode()
    assert client.post(f"/items/{item.pk}/comments/", {"body": ""}).status_code == 400
    assert client.post(f"/items/{item.pk}/comments/", {"body": "x", "replaces": "abc"}).status_code == 400
    assert client.post(f"/items/{item.pk}/comments/", {"body": "x", "replaces": "9" * 40}).status_code == 400
    assert not Comment.objects.exists()
    # Screens take NUL out of every form value at the door (NulFreeInputMiddleware); the API refuses it.
    assert client.post(f"/items/{item.pk}/comments/", {"body": "nul\x00byte"}).status_code == 302
    assert Comment.objects.get().body == "nulbyte"


def test_a_10_mb_comment_is_a_clear_refusal_not_a_crash(client, item, ana):
    client.force_login(ana)
    response = client.post(f"/items/{item.pk}/comments/", {"body": "x" * 10 * 1024 * 1024})
    assert 400 <= response.status_code < 500 and not Comment.objects.exists()


def test_an_auditor_reads_the_thread_but_cannot_post_or_watch(client, item, ana):
    comment_add(actor=ana, item=item, body="Waiting for the employee.")
    client.force_login(make_person("aud", "Auditors"))
    page = client.get(f"/items/{item.pk}/").content.decode()
    assert "Waiting for the employee." in page and 'data-testid="comments-read-only"' in page
    assert 'data-testid="comment-form"' not in page and 'data-testid="watch-button"' not in page
    assert client.post(f"/items/{item.pk}/comments/", {"body": "hi"}).status_code == 403
    assert client.post(f"/items/{item.pk}/watch/").status_code == 403
    assert Comment.objects.count() == 1


def test_an_engineer_may_discuss_a_finance_item(client, item):
    client.force_login(make_person("eng", "Integration engineers"))
    assert client.post(f"/items/{item.pk}/comments/", {"body": "The connector is fine."}).status_code == 302
    assert Comment.objects.get().actor.username == "eng"


def test_outside_their_entities_nobody_comments_or_watches(client, item):
    client.force_login(make_person("de.only", "Finance analysts", ["NW-DE"]))
    assert client.post(f"/items/{item.pk}/comments/", {"body": "hi"}).status_code == 404
    assert client.post(f"/items/{item.pk}/watch/").status_code == 404
    assert client.post(f"/documents/{item.document_id}/comments/", {"body": "hi"}).status_code == 404
    assert not Comment.objects.exists() and not Watch.objects.exists()


def test_watch_and_unwatch_a_document(client, item, ana):
    client.force_login(ana)
    doc = item.document
    response = client.post(f"/documents/{doc.pk}/watch/", {"watch": "1"}, **HX)
    assert "Watching: ana" in response.content.decode() and Watch.objects.filter(user=ana, document=doc).exists()
    response = client.post(f"/documents/{doc.pk}/watch/", {"watch": "0"}, **HX)
    assert "Nobody watches this yet." in response.content.decode() and not Watch.objects.exists()
    client.post(f"/documents/{doc.pk}/comments/", {"body": "On the whole report."})
    assert "On the whole report." in client.get(f"/documents/{doc.pk}/").content.decode()


# --- inbox ---------------------------------------------------------------------------------------------


def test_the_inbox_lists_unread_first_and_marks_read(client, item, ana, ben):
    older = notifications_send(recipients=[ana], kind="alert", title="Older, unread")[0]
    read = notifications_send(recipients=[ana], kind="alert", title="Newer, already read")[0]
    notifications_send(recipients=[ben], kind="alert", title="Ben's")
    Notification.objects.filter(pk=read.pk).update(read_at=read.created_at)
    client.force_login(ana)
    page = client.get("/inbox/").content.decode()
    assert page.index("Older, unread") < page.index("Newer, already read") and "Ben's" not in page
    assert '<span class="count inbox-count" id="inbox-badge" data-testid="inbox-badge">1</span>' in page
    response = client.post(f"/inbox/{older.pk}/read/", **HX)
    html = response.content.decode()
    assert 'data-read="true"' in html and 'id="inbox-badge"' in html and 'hx-swap-oob="true"' in html
    assert not Notification.objects.filter(recipient=ana, read_at=None).exists()
    bens = Notification.objects.get(recipient=ben)
    assert client.post(f"/inbox/{bens.pk}/read/").status_code == 404  # another's message does not exist for you
    notifications_send(recipients=[ana], kind="alert", title="One more")
    html = client.post("/inbox/read-all/", **HX).content.decode()
    assert "Nothing unread." in html and 'id="inbox-badge"' in html and "One more" in html
    assert client.post("/inbox/read-all/").status_code == 302
    bens.refresh_from_db()
    assert bens.read_at is None


def test_email_settings_save_a_choice_and_refuse_another(client, item, ana):
    client.force_login(ana)
    assert 'value="immediately" checked' in client.get("/inbox/settings/").content.decode()
    assert client.post("/inbox/settings/", {"email": "digest"}).status_code == 302
    assert NotificationPreference.objects.get(user=ana).email == "digest"
    response = client.post("/inbox/settings/", {"email": "hourly"})
    assert response.status_code == 400 and "Choose how to be mailed" in response.content.decode()
    assert NotificationPreference.objects.get(user=ana).email == "digest"


# --- API -----------------------------------------------------------------------------------------------


def test_api_comments_read_and_post(client, item, ana, ben):
    client.force_login(ana)
    url = f"/api/exceptions/{item.pk}/comments/"
    response = client.post(url, {"body": "Hello @ben"}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["author"] == "ana" and response.json()["mentioned"] == ["ben"]
    first = response.json()["id"]
    response = client.post(url, {"body": "Hello @ben, edited", "replaces": first}, content_type="application/json")
    assert response.status_code == 201 and response.json()["edited"] is True
    [only] = client.get(url).json()
    assert only["body"] == "Hello @ben, edited" and only["replaces"] == first


@pytest.mark.parametrize(
    "body",
    [
        {"body": ""},
        {"body": "x" * 10_001},
        {"body": "nul\x00"},
        {},
        {"body": ["a list"]},
        {"body": "x", "replaces": -5},
        {"body": "x", "replaces": 10**30},
    ],
)
def test_api_refuses_bad_bodies_with_400(client, item, ana, body):
    client.force_login(ana)
    response = client.post(f"/api/exceptions/{item.pk}/comments/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not Comment.objects.exists()


def test_api_refuses_a_10_mb_body_without_a_crash(client, item, ana):
    client.force_login(ana)
    response = client.post(
        f"/api/exceptions/{item.pk}/comments/",
        json.dumps({"body": "x" * 10 * 1024 * 1024}),
        content_type="application/json",
    )
    assert 400 <= response.status_code < 500 and not Comment.objects.exists()


def test_api_comments_are_scoped_and_auditors_read_only(client, item, ana):
    comment_add(actor=ana, item=item, body="US only")
    url = f"/api/exceptions/{item.pk}/comments/"
    client.force_login(make_person("de.only", "Finance analysts", ["NW-DE"]))
    assert client.get(url).status_code == 404
    assert client.post(url, {"body": "hi"}, content_type="application/json").status_code == 404
    client.force_login(make_person("aud", "Auditors"))
    assert client.get(url).json()[0]["body"] == "US only"
    assert client.post(url, {"body": "hi"}, content_type="application/json").status_code == 403


def test_the_comments_endpoint_is_in_the_openapi_schema(client, item, ana):
    client.force_login(ana)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    path = schema["paths"]["/api/exceptions/{id}/comments/"]
    assert set(path) >= {"get", "post"}
    assert "CommentCreate" in json.dumps(path["post"]["requestBody"])
