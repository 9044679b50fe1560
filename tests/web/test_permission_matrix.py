"""Who may call what: every URL pattern and API action, as every role, anonymous and out of scope.

`MATRIX` below is written by hand, apart from `workbench/web/access.py`: it is what the business
expects of each role. The test calls every route as each persona and compares the server's answer
with it, so a change to the access table that a reviewer did not mean shows up here. A URL with
no row in MATRIX fails the test: a new screen or API action needs its decision written down.

Letters: a analyst, m manager, e engineer, d administrator, u auditor, c Call Out token,
s submission client, g approval engine; "*" anyone (no sign-in), "+" any signed-in person.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLResolver, get_resolver

from tests.conftest import make_person
from tests.factories import expense_line, expense_report, master_data
from workbench.models import ApiToken, Evidence, ExceptionItem
from workbench.services.validation import documents_validate

PEOPLE = "amedu"
MATRIX: dict[str, dict[str, str]] = {
    "home": {"GET": PEOPLE},
    "healthz": {"GET": "*"},
    "login": {"GET": "*", "POST": "*"},
    "logout": {"POST": "+"},
    "password_change": {"GET": "+", "POST": "+"},
    "password_change_done": {"GET": "+"},
    "queue:list": {"GET": PEOPLE},
    "queue:bulk_assign": {"POST": "ame"},
    "queue:bulk_preview": {"POST": "ame"},
    "queue:bulk_run": {"POST": "ame"},
    "queue:export_csv": {"GET": PEOPLE},
    "queue:export_xlsx": {"GET": PEOPLE},
    "queue:view_save": {"POST": PEOPLE},
    "queue:view_delete": {"POST": PEOPLE},
    "queue:view_default": {"POST": "d"},  # admins pick the view each role opens on
    "documents:export_csv": {"GET": PEOPLE},
    "documents:export_xlsx": {"GET": PEOPLE},
    "p2p:accruals_export_csv": {"GET": PEOPLE},
    "p2p:accruals_export_xlsx": {"GET": PEOPLE},
    "p2p:budgets_export_csv": {"GET": PEOPLE},
    "p2p:budgets_export_xlsx": {"GET": PEOPLE},
    "audit:overrides_export_csv": {"GET": "mdu"},
    "audit:overrides_export_xlsx": {"GET": "mdu"},
    "items:detail": {"GET": PEOPLE},
    "items:progress": {"GET": PEOPLE},
    "items:correct": {"POST": "am"},  # a finance item: engineers work technical ones
    "items:override": {"POST": "am"},
    "items:override_decide": {"POST": "m"},
    "items:retry": {"POST": "am"},
    "items:send_back": {"POST": "am"},
    "items:assign": {"POST": "am"},
    "items:snooze": {"POST": "am"},  # like assign: a finance item is finance's to set aside
    "items:wake": {"POST": "am"},
    "items:evidence": {"POST": "am"},
    "items:accept_variance": {"POST": "am"},
    "items:credit_note": {"POST": "am"},
    "items:route": {"POST": "am"},
    "items:reject_invoice": {"POST": "am"},
    "items:pull_again": {"POST": "amd"},  # drift fixes: the item's kind of work, or an admin
    "items:accept_erp": {"POST": "amd"},
    "items:repost": {"POST": "amd"},
    "documents:detail": {"GET": PEOPLE},
    "documents:list": {"GET": PEOPLE},
    "search": {"GET": PEOPLE},
    "items:comment": {"POST": "amed"},  # every working role talks; auditors read the thread only
    "items:watch": {"POST": "amed"},
    "documents:comment": {"POST": "amed"},
    "documents:watch": {"POST": "amed"},
    "inbox:list": {"GET": "+"},
    "inbox:read": {"POST": "+"},
    "inbox:read_all": {"POST": "+"},
    "inbox:settings": {"GET": "+", "POST": "+"},
    "dashboard:page": {"GET": PEOPLE},
    "evidence:download": {"GET": PEOPLE},
    "jobs:detail": {"GET": "+"},
    "jobs:progress": {"GET": "+"},
    "jobs:download": {"GET": "+"},
    "alerts:page": {"GET": "med"},  # admins edit rules; managers and engineers read them
    "alerts:rule_new": {"GET": "d", "POST": "d"},
    "alerts:rule_edit": {"GET": "d", "POST": "d"},
    "alerts:evaluate": {"POST": "ed"},
    "close:page": {"GET": PEOPLE},
    "close:entity": {"GET": PEOPLE},
    "close:calendar_save": {"POST": "d"},
    "close:day_add": {"POST": "d"},
    "close:day_remove": {"POST": "d"},
    "close:period_save": {"POST": "d"},
    "sync:page": {"GET": PEOPLE},
    "sync:run_now": {"POST": "ed"},
    "sync:run_progress": {"GET": PEOPLE},
    "sync:schedules": {"GET": "edu"},
    "sync:schedule_save": {"POST": "d"},
    "sync:reconciliation": {"GET": PEOPLE},
    "sync:reconciliation_run": {"GET": PEOPLE},
    "sync:reconciliation_progress": {"GET": PEOPLE},
    "sync:reconcile_now": {"POST": "ed"},
    "sync:reconciliation_retention": {"POST": "d"},
    "p2p:accruals": {"GET": PEOPLE},
    "p2p:accrual_post": {"POST": "m"},
    "p2p:budgets": {"GET": PEOPLE},
    "p2p:settings": {"GET": "du"},
    "p2p:rule_add": {"POST": "d"},
    "p2p:rule_edit": {"POST": "d"},
    "p2p:delegation_add": {"POST": "d"},
    "p2p:tolerance_add": {"POST": "d"},
    "p2p:tolerance_edit": {"POST": "d"},
    "p2p:einvoices": {"GET": PEOPLE, "POST": "am"},
    "mappings:list": {"GET": "du"},
    "mappings:edit": {"GET": "du"},
    "mappings:test": {"POST": "d"},
    "mappings:test_existing": {"POST": "d"},
    "mappings:save": {"POST": "d"},
    "mappings:save_existing": {"POST": "d"},
    "mappings:run": {"GET": "du"},
    "suppliers:list": {"GET": PEOPLE},
    "suppliers:confirm": {"POST": "d"},
    "suppliers:reject": {"POST": "d"},
    "masterdata:page": {"GET": PEOPLE},
    "masterdata:owner": {"POST": "d"},
    "masterdata:keep": {"POST": "d"},
    "governance:policies": {"GET": "du"},
    "governance:policy_save": {"POST": "d"},
    "governance:reason_save": {"POST": "d"},
    "audit:overrides": {"GET": "mdu"},
    "audit:trail": {"GET": "du"},
    "audit:export": {"GET": "du"},
    "api-root": {"GET": PEOPLE},
    "schema": {"GET": PEOPLE},
    "api-docs": {"GET": PEOPLE},
    "exception-list": {"GET": PEOPLE},
    "exception-export": {"GET": PEOPLE},
    "exception-detail": {"GET": PEOPLE},
    "exception-assign": {"POST": "am"},
    "exception-snooze": {"POST": "am"},
    "exception-correct": {"POST": "am"},
    "exception-override": {"POST": "am"},
    "exception-retry": {"POST": "am"},
    "exception-send-back": {"POST": "am"},
    "exception-comments": {"GET": PEOPLE, "POST": "amed"},
    "document-list": {"GET": PEOPLE},
    "document-detail": {"GET": PEOPLE},
    "document-find": {"GET": PEOPLE},
    "kpis": {"GET": PEOPLE},
    "p2p-requisition-validate": {"POST": PEOPLE + "cs"},
    "p2p-budget-check": {"POST": PEOPLE + "cs"},
    "p2p-requisition-create": {"POST": "s"},
    "p2p-po-create": {"POST": "s"},
    "p2p-einvoice": {"POST": "ams"},
    "p2p-invoice-status": {"GET": PEOPLE},
    "p2p-approval-decision": {"POST": PEOPLE + "g"},
}
# Routed only when configured (mail for password reset, an identity provider for single sign-on).
OPTIONAL = {
    "password_reset": {"GET": "*", "POST": "*"},
    "password_reset_done": {"GET": "*"},
    "password_reset_confirm": {"GET": "*", "POST": "*"},
    "password_reset_complete": {"GET": "*"},
    "oidc_authentication_init": {"GET": "*"},
    "oidc_authentication_callback": {"GET": "*"},
    "oidc_logout": {"POST": "+"},
}
ROLES = {
    "a": "Finance analysts",
    "m": "Finance managers",
    "e": "Integration engineers",
    "d": "Administrators",
    "u": "Auditors",
    "c": "Integration: requisition validation",
    "s": "Integration: document submission",
    "g": "Integration: approval engine",
}
TOKEN_ONLY = "csg"  # integration clients call with an API token, never a session


def routes() -> list[tuple[str, str]]:
    """(view name, route text) of every named URL; the admin site guards itself."""
    found = []

    def walk(resolver, prefix, namespace):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                if p.namespace == "admin":
                    continue
                walk(p, prefix + str(p.pattern), namespace + (f"{p.namespace}:" if p.namespace else ""))
            elif p.name and "format" not in str(p.pattern):
                found.append((namespace + p.name, prefix + str(p.pattern)))

    walk(get_resolver(), "", "")
    return found


def test_every_url_has_a_row_in_the_matrix():
    names = {name for name, _ in routes()}
    missing = sorted(names - set(MATRIX) - set(OPTIONAL))
    assert not missing, f"URLs with no decision on who may call them: {missing}"
    stale = sorted(set(MATRIX) - names)
    assert not stale, f"Matrix rows for URLs that no longer exist: {stale}"


def _path(route: str, ids: dict) -> str:
    """A concrete path: `<int:pk>` and DRF's `(?P<pk>...)` become a real object's id."""
    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"\(\?P<pk>[^)]*\)", str(ids["pk"]), route)
    route = re.sub(r"<int:pk>", str(ids["pk"]), route)
    route = re.sub(r"<str:job>", "master_data", route)
    route = re.sub(r"<[^>]+>", "x", route)
    return "/" + route.replace("\\", "")


@pytest.fixture
def world(db, tmp_path, settings, jobs_sent):
    settings.EVIDENCE_DIR = tmp_path
    master_data()
    master_data("NW-DE", "EUR")
    doc = expense_report(lines=[expense_line(cost_center="")])
    documents_validate(documents=[doc])
    item = ExceptionItem.objects.get(document=doc, code="MISSING_COST_CENTER")
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "abc").write_bytes(b"%PDF-1.4 evidence")
    people = {k: make_person(f"p-{k}", role) for k, role in ROLES.items()}
    evidence = Evidence.objects.create(
        item=item, name="e.pdf", content_type="application/pdf", size=17, sha256="abc", path="ab/abc",
        uploaded_by=people["a"],
    )  # fmt: skip
    tokens = {k: ApiToken.issue(people[k], "matrix")[1] for k in TOKEN_ONLY}
    return {"item": item, "doc": doc, "evidence": evidence, "people": people, "tokens": tokens}


def _ids_for(name: str, world) -> dict:
    if name.startswith("documents:") or name.startswith("document-"):
        return {"pk": world["doc"].pk}
    if name.startswith("evidence:"):
        return {"pk": world["evidence"].pk}
    if name.startswith(("items:", "exception-", "masterdata:keep")):
        return {"pk": world["item"].pk}
    return {"pk": 999999}  # a missing object: an allowed call answers 404, a refused one 403


def _call(client, method: str, path: str, **extra):
    if method == "GET":
        return client.get(path, **extra)
    return client.post(path, {}, **extra)


def _refused(response, *, anonymous: bool, api: bool) -> bool:
    if response.status_code == 302:
        return "/login/" in response["Location"]
    return response.status_code in ((401, 403) if api or anonymous else (403,))


@pytest.mark.parametrize("who", ["anonymous", *ROLES])
def test_each_role_gets_exactly_what_the_matrix_says(client, world, who):
    wrong = []
    if who in ROLES and who not in TOKEN_ONLY:
        client.force_login(world["people"][who])
    auth = {"HTTP_AUTHORIZATION": f"Token {world['tokens'][who]}"} if who in TOKEN_ONLY else {}
    for name, route in routes():
        rule = MATRIX.get(name) or OPTIONAL[name]
        api = route.startswith("api/")
        if who in TOKEN_ONLY and not api:
            continue  # a token is an API credential: screens do not read it
        path = _path(route, _ids_for(name, world))
        for method, letters in rule.items():
            if name == "logout":
                continue  # signing out here would sign the rest of this walk out
            expected = letters == "*" or (who != "anonymous" and (letters == "+" or who in letters))
            response = _call(client, method, path, **auth)
            refused = _refused(response, anonymous=who == "anonymous", api=api)
            broken = response.status_code >= 500 and name != "healthz"  # 503 there: no worker in this test
            if broken or expected == refused:
                wrong.append(
                    f"{method} {path} ({name}): {response.status_code}, expected {'allowed' if expected else 'refused'}"
                )
    assert not wrong, "\n".join(wrong)


def test_outside_its_entities_an_account_finds_nothing(client, world):
    """analyst.de works on the German entity only: the US item, its document, its evidence and the
    API's views of them do not exist for them (404), and the queue does not count them."""
    client.force_login(make_person("analyst.de", "Finance analysts", ["NW-DE"]))
    item, doc, evidence = world["item"], world["doc"], world["evidence"]
    for path in [
        f"/items/{item.pk}/",
        f"/items/{item.pk}/progress/",
        f"/documents/{doc.pk}/",
        f"/evidence/{evidence.pk}/",
        f"/api/exceptions/{item.pk}/",
        f"/api/documents/{doc.pk}/",
    ]:
        assert client.get(path).status_code == 404, path
    for path in [f"/items/{item.pk}/override/", f"/items/{item.pk}/retry/", f"/api/exceptions/{item.pk}/retry/"]:
        assert client.post(path, {"reason": "x", "reason_code": "BUSINESS_OK"}).status_code == 404, path
    assert client.get("/api/exceptions/").json()["count"] == 0
    page = client.get("/queue/").content.decode()
    assert f'href="/items/{item.pk}/"' not in page and 'value="NW-US"' not in page
    item.refresh_from_db()
    assert item.status == "open"
