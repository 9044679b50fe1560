"""Single sign-on with OpenID Connect against the identity sandbox (Entra ID v2.0 shape).

In Chromium: "Sign in with Microsoft Entra ID", the sandbox's sign-in form, back on the queue with the
role the app role claim gave; the person is then deactivated in the directory (a SCIM PATCH), the
identity pull runs, and the next page load is the login page. Without a browser (Django's test client
for the workbench, `requests` for the sandbox's pages): how claims become roles and entity scope, who
is refused, and that a deactivation ends sessions and API tokens at once.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from connectors.sandboxkit.kit import run_in_thread
from connectors.scim.sandbox.oidc import TENANT_ID
from connectors.scim.sandbox.server import STATIC_TOKEN, ScimSandbox
from sync.jobs import run_job
from sync.models import SyncRun
from tests.conftest import SMALL_WORLD, TODAY, SandboxProcess
from workbench import roles
from workbench.models import ApiToken, Connection, LegalEntity, UserScope

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
User = get_user_model()


# --- the identity sandbox and the settings that point at it --------------------------------------------


def use_provider(settings, url: str) -> None:
    settings.OIDC_RP_CLIENT_ID = "workbench"
    settings.OIDC_RP_CLIENT_SECRET = "sandbox-secret"
    settings.OIDC_OP_DISCOVERY_URL = f"{url}/{TENANT_ID}/v2.0/.well-known/openid-configuration"


@pytest.fixture
def identity_process(tmp_path, settings):
    box = SandboxProcess("scim", tmp_path, **SMALL_WORLD)
    try:
        use_provider(settings, box.url)
        yield box
    finally:
        box.stop()


@pytest.fixture
def identity(settings):
    """The same sandbox in a thread (quicker, for the tests without a browser)."""
    # Django's test client is http://testserver: registered as a reply URL, as an app registration would.
    sandbox = ScimSandbox(
        data_path=None, seed=7, today=TODAY, redirect_uris="http://testserver/oidc/callback/", **SMALL_WORLD
    )
    server, url = run_in_thread(sandbox)
    use_provider(settings, url)
    yield url
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


@pytest.fixture
def entities(db):
    return {
        code: LegalEntity.objects.get_or_create(code=code, defaults={"name": name, "currency": cur})[0]
        for code, name, cur in (
            ("NW-US", "Northwind Traders Inc.", "USD"),
            ("NW-DE", "Northwind Handels GmbH", "EUR"),
            ("NW-FR", "Northwind France SAS", "EUR"),
        )
    }


def directory(url: str) -> Connection:
    return Connection.objects.create(
        name="Entra ID directory (SCIM)",
        kind="scim",
        role="identity",
        config={"base_url": url, "token": STATIC_TOKEN, "timeout": 5},
    )


def scim_users(url: str) -> list[dict]:
    resp = requests.get(
        f"{url}/scim/v2/Users", headers={"Authorization": f"Bearer {STATIC_TOKEN}"}, params={"count": 100}, timeout=5
    )
    return resp.json()["Resources"]


def person(url: str, n: int = 0, entity: str = "NW-US") -> dict:
    """An active employee of the entity in the directory (the n-th)."""
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    found = [u for u in scim_users(url) if u["active"] and u.get(ent, {}).get("organization") == entity]
    return sorted(found, key=lambda u: u["userName"])[n]


def assign(url: str, user_name: str, roles_: list[str] | None, entities_: list[str] | None = None) -> None:
    resp = requests.post(
        f"{url}/sandbox/app-roles", json={"user": user_name, "roles": roles_, "entities": entities_ or []}, timeout=5
    )
    assert resp.status_code == 200, resp.text


def scim_deactivate(url: str, user: dict) -> None:
    resp = requests.patch(
        f"{url}/scim/v2/Users/{user['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
        timeout=5,
    )
    assert resp.status_code == 200 and resp.json()["active"] is False


def identity_pull(url: str) -> None:
    conn = Connection.objects.filter(kind="scim").first() or directory(url)
    run = run_job(SyncRun.objects.create(connection=conn, job="identity_pull"))
    assert run.status == "succeeded", run.error


# --- the flow without a browser: the workbench through Django's client, the sandbox through requests ---


def sso_sign_in(client, user_name: str, password: str = "sandbox", next_url: str = "/queue/"):
    """Start at the workbench, sign in at the sandbox, come back: the workbench's last answer."""
    start = client.get("/oidc/authenticate/", {"next": next_url})
    assert start.status_code == 302, start
    form = requests.get(start["Location"], timeout=5)
    assert form.status_code == 200, form.text
    ctx = re.search(r'name=ctx value="([^"]+)"', form.text).group(1)
    answer = requests.post(
        start["Location"].split("?")[0],
        data={"ctx": ctx, "username": user_name, "password": password},
        allow_redirects=False,
        timeout=5,
    )
    if answer.status_code != 302:
        return answer  # the sandbox kept the person on its form
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/oidc/callback/"
    return client.get(back.path + "?" + back.query)


def messages_of(client) -> str:
    return client.get("/accounts/login/").content.decode()


pytestmark = pytest.mark.django_db


def test_claims_become_roles_and_entity_scope(client, identity, entities):
    who = person(identity)
    assign(identity, who["userName"], ["Workbench.Analyst"], ["NW-US", "NW-XX"])  # NW-XX: no such entity here

    done = sso_sign_in(client, who["userName"])
    assert done.status_code == 302 and done["Location"] == "/queue/"
    user = User.objects.get(username=who["userName"].lower())
    assert user.email == who["emails"][0]["value"] and user.get_full_name()
    assert not user.has_usable_password() and not user.is_staff and not user.is_superuser
    assert roles.role_names(user) == [roles.ANALYST]
    scope = UserScope.objects.get(user=user)
    assert scope.managed_by_sso and not scope.all_entities
    assert list(scope.entities.values_list("code", flat=True)) == ["NW-US"]
    assert client.get("/queue/").status_code == 200

    # The next sign-in replaces roles and entities with what the claims say then.
    assign(identity, who["userName"], ["Workbench.Admin", "Workbench.Auditor"], ["*"])
    client.logout()
    assert sso_sign_in(client, who["userName"]).status_code == 302
    user.refresh_from_db()
    assert sorted(roles.role_names(user)) == sorted([roles.ADMIN, roles.AUDITOR])
    assert user.is_staff and not user.is_superuser  # the admin site, never superuser
    scope.refresh_from_db()
    assert scope.all_entities and not scope.entities.exists()


def test_no_known_role_no_sign_in(client, identity, entities):
    who = person(identity, 1)
    assign(identity, who["userName"], [])  # signs in at the provider, but has no app role here
    done = sso_sign_in(client, who["userName"])
    assert done.status_code == 302 and done["Location"] == "/accounts/login/"
    assert not User.objects.filter(username=who["userName"].lower()).exists()
    assert "no role in the workbench" in messages_of(client)
    assert client.get("/queue/").status_code == 302  # not signed in


def test_a_local_password_account_is_not_taken_over(client, identity, entities):
    who = person(identity, 2)
    assign(identity, who["userName"], ["Workbench.Admin"], ["*"])
    local = User.objects.create_user(who["userName"].lower(), password="a long local password")
    local.groups.add(Group.objects.get_or_create(name=roles.ANALYST)[0])
    done = sso_sign_in(client, who["userName"])
    assert done["Location"] == "/accounts/login/"
    local.refresh_from_db()
    assert not local.is_staff and roles.role_names(local) == [roles.ANALYST]
    assert "signs in with its password" in messages_of(client)


def test_the_provider_refuses_a_wrong_password(client, identity, entities):
    who = person(identity)
    answer = sso_sign_in(client, who["userName"], password="guess")
    assert answer.status_code == 200 and "AADSTS50126" in answer.text


def test_sso_off_offers_and_routes_nothing(client, settings, entities):
    settings.OIDC_RP_CLIENT_ID = ""
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Microsoft Entra ID" not in page and 'name="password"' in page
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/", {"code": "x", "state": "y"}).status_code == 404


def test_the_login_page_offers_both_when_sso_is_on(client, identity):
    page = client.get("/accounts/login/?next=/queue/").content.decode()
    assert "Sign in with Microsoft Entra ID" in page and 'name="password"' in page
    assert 'href="/oidc/authenticate/?next=/queue/"' in page or 'href="/oidc/authenticate/?next=%2Fqueue%2F"' in page


def test_a_forged_callback_signs_no_one_in(client, identity, entities):
    client.get("/oidc/authenticate/")  # a state exists in the session, but not this one
    resp = client.get("/oidc/callback/", {"code": "made-up", "state": "made-up"})
    assert resp.status_code == 302 and resp["Location"] == "/accounts/login/"
    assert client.get("/queue/").status_code == 302


def test_a_user_deactivated_in_the_directory_loses_sessions_and_tokens_at_once(client, identity, entities):
    who = person(identity)
    assign(identity, who["userName"], ["Workbench.Analyst"], ["NW-US"])
    assert sso_sign_in(client, who["userName"]).status_code == 302
    assert client.get("/queue/").status_code == 200
    user = User.objects.get(username=who["userName"].lower())
    _, key = ApiToken.issue(user, "reporting script")
    api = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.get("/api/exceptions/", **api).status_code == 200
    identity_pull(identity)  # the directory says active: nothing happens
    assert client.get("/queue/").status_code == 200

    scim_deactivate(identity, who)
    identity_pull(identity)

    user.refresh_from_db()
    assert not user.is_active
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    resp = client.get("/queue/")
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")
    client.logout()
    assert client.get("/api/exceptions/", **api).status_code == 401
    # And the provider no longer lets them sign in.
    assert "AADSTS50057" in sso_sign_in(client, who["userName"]).text


# --- in Chromium ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sign_in_with_entra_id_then_offboarding_ends_the_session(live_server, page, identity_process, entities):
    url = identity_process.url
    who = person(url)
    assign(url, who["userName"], ["Workbench.Analyst"], ["NW-US"])
    directory(url)

    page.goto(f"{live_server.url}/queue/")
    assert "/accounts/login/" in page.url
    page.click("text=Sign in with Microsoft Entra ID")
    page.wait_for_url(re.compile(rf"^{re.escape(url)}/.*/oauth2/v2\.0/authorize"))
    assert "code_challenge_method=S256" in page.url and "nonce=" in page.url
    page.fill("input[name=username]", who["userName"])
    page.fill("input[name=password]", "sandbox")
    page.click("button[type=submit][name=signin]")
    page.wait_for_url(re.compile(r".*/queue/.*"))

    who_box = page.locator("[data-testid=who]").inner_text()
    assert who["name"]["givenName"] in who_box and roles.ANALYST in who_box  # the role the claim gave
    user = User.objects.get(username=who["userName"].lower())
    assert roles.role_names(user) == [roles.ANALYST]

    scim_deactivate(url, who)
    identity_pull(url)

    page.reload()
    assert "/accounts/login/" in page.url
    page.click("text=Sign in with Microsoft Entra ID")
    page.fill("input[name=username]", who["userName"])
    page.fill("input[name=password]", "sandbox")
    page.click("button[type=submit][name=signin]")
    page.locator("#error", has_text="AADSTS50057").wait_for()  # the provider refuses a deactivated user
