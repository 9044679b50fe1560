"""The identity sandbox as an OpenID Connect provider (Entra ID v2.0 shape), driven as any standard client
would: discovery, the authorization code flow with PKCE, and the ID token verified against the JWKS with
PyJWT. Nothing here comes from the sandbox's code: PKCE, form parsing and token checks are the test's own.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from datetime import date
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from connectors.sandboxkit.kit import run_in_thread
from connectors.scim.sandbox.server import STATIC_TOKEN, ScimSandbox

WORLD_ARGS = {"seed": 3, "today": date(2026, 11, 20), "n_employees": 40, "n_lines": 60}
TENANT = "7d3a9c2e-5b1f-4e8a-9c6d-2f0b8e4a1c35"
CLIENT = {"client_id": "workbench", "client_secret": "sandbox-secret"}
REDIRECT = "http://127.0.0.1:8000/oidc/callback/"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def stop(server) -> None:
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


@pytest.fixture
def box():
    sandbox = ScimSandbox(data_path=None, **WORLD_ARGS)
    server, base = run_in_thread(sandbox)
    yield sandbox, base
    stop(server)


@pytest.fixture
def url(box):
    return box[1]


@pytest.fixture
def op(url):
    """The provider's metadata, as a client discovers it."""
    resp = requests.get(f"{url}/{TENANT}/v2.0/.well-known/openid-configuration", timeout=5)
    assert resp.status_code == 200
    return resp.json()


# --- a client, written from the specs (RFC 6749, RFC 7636, OIDC Core) -------------------------------


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(op: dict, **overrides) -> requests.Response:
    params = {
        "client_id": "workbench",
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid profile email",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge_method": "S256",
        **overrides,
    }
    return requests.get(
        op["authorization_endpoint"],
        params={k: v for k, v in params.items() if v is not None},
        allow_redirects=False,
        timeout=5,
    )


def submit(op: dict, page: requests.Response, username: str, password: str = "sandbox", **extra):
    assert page.status_code == 200, page.text
    ctx = re.search(r'name=ctx value="([^"]+)"', page.text).group(1)
    action = re.search(r'<form method=post action="([^"]+)"', page.text).group(1)
    base = "{0.scheme}://{0.netloc}".format(urlsplit(op["authorization_endpoint"]))
    return requests.post(
        base + action,
        data={"ctx": ctx, "username": username, "password": password, **extra},
        allow_redirects=False,
        timeout=5,
    )


def callback_params(resp: requests.Response) -> dict:
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(op: dict, username: str, scope: str = "openid profile email") -> tuple[str, str]:
    """(code, verifier) for the user."""
    verifier, challenge = pkce()
    params = callback_params(submit(op, authorize(op, code_challenge=challenge, scope=scope), username))
    assert params["state"] == "state-1"
    return params["code"], verifier


def redeem(op: dict, code: str, verifier: str | None, basic: bool = False, **extra) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    auth = None
    if basic:
        auth = (CLIENT["client_id"], CLIENT["client_secret"])
    else:
        data.update(CLIENT)
    return requests.post(op["token_endpoint"], data=data, auth=auth, timeout=5)


def verified(op: dict, id_token: str) -> dict:
    key = jwt.PyJWKClient(op["jwks_uri"]).get_signing_key_from_jwt(id_token)
    return jwt.decode(
        id_token,
        key.key,
        algorithms=op["id_token_signing_alg_values_supported"],
        audience="workbench",
        issuer=op["issuer"],
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )


def assignments(url: str) -> list[dict]:
    return requests.get(f"{url}/sandbox/app-roles", timeout=5).json()["assignments"]


def someone(url: str, role: str | None = None) -> dict:
    """An active directory user (with that app role, when given)."""
    rows = [a for a in assignments(url) if a["active"] and (role is None or role in a["roles"])]
    assert rows, f"nobody has {role}"
    return rows[0]


def scim_user(url: str, user_name: str) -> dict:
    resp = requests.get(
        f"{url}/scim/v2/Users",
        params={"filter": f'userName eq "{user_name}"'},
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
        timeout=5,
    )
    return resp.json()["Resources"][0]


def scim_deactivate(url: str, user_id: str) -> None:
    # Entra's spelling: a capitalized op and the boolean as a string.
    resp = requests.patch(
        f"{url}/scim/v2/Users/{user_id}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
        timeout=5,
    )
    assert resp.status_code == 200 and resp.json()["active"] is False


# --- discovery and keys -----------------------------------------------------------------------------


def test_discovery_is_entra_v2_shaped(url, op):
    assert op["issuer"] == f"{url}/{TENANT}/v2.0"
    assert op["authorization_endpoint"] == f"{url}/{TENANT}/oauth2/v2.0/authorize"
    assert op["token_endpoint"] == f"{url}/{TENANT}/oauth2/v2.0/token"
    assert op["jwks_uri"] == f"{url}/{TENANT}/discovery/v2.0/keys"
    assert op["end_session_endpoint"] == f"{url}/{TENANT}/oauth2/v2.0/logout"
    assert op["response_types_supported"] == ["code"]
    assert op["id_token_signing_alg_values_supported"] == ["RS256"]
    assert op["code_challenge_methods_supported"] == ["S256"]
    assert op["scopes_supported"] == ["openid", "profile", "email", "offline_access"]
    by_domain = requests.get(f"{url}/northwind.example/v2.0/.well-known/openid-configuration", timeout=5).json()
    assert by_domain["issuer"] == op["issuer"]  # the domain names the same tenant
    unknown = requests.get(f"{url}/contoso.example/v2.0/.well-known/openid-configuration", timeout=5)
    assert unknown.status_code == 400 and unknown.json()["error_description"].startswith("AADSTS90002:")


def test_jwks_has_one_rsa_signing_key_with_a_kid(op):
    keys = requests.get(op["jwks_uri"], timeout=5).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["use"] == "sig" and keys[0]["kid"] and keys[0]["n"] and keys[0]["e"]


# --- the code flow ----------------------------------------------------------------------------------


def test_code_flow_gives_an_rs256_id_token_a_standard_client_verifies(url, op):
    who = someone(url, "Workbench.Analyst")
    code, verifier = sign_in(op, who["userName"].upper())  # user names are not case-sensitive
    resp = redeem(op, code, verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["access_token"] and "refresh_token" not in body
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256" and header["kid"]
    claims = verified(op, body["id_token"])
    directory = scim_user(url, who["userName"])
    assert claims["nonce"] == "nonce-1"
    assert claims["oid"] == directory["id"] and claims["tid"] == TENANT and claims["ver"] == "2.0"
    assert claims["preferred_username"] == who["userName"] and claims["email"] == directory["emails"][0]["value"]
    assert claims["name"] == directory["displayName"]
    assert claims["roles"] == ["Workbench.Analyst"] and claims["entities"] == who["entities"]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["sub"] != claims["oid"]  # pairwise, as Entra's


def test_client_secret_by_http_basic_works_but_not_twice(url, op):
    who = someone(url)
    code, verifier = sign_in(op, who["userName"])
    assert redeem(op, code, verifier, basic=True).status_code == 200
    code, verifier = sign_in(op, who["userName"])
    both = requests.post(
        op["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        | CLIENT,
        auth=(CLIENT["client_id"], CLIENT["client_secret"]),
        timeout=5,
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def test_a_code_is_redeemed_once(url, op):
    code, verifier = sign_in(op, someone(url)["userName"])
    assert redeem(op, code, verifier).status_code == 200
    again = redeem(op, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant" and again.json()["error_codes"] == [54005]
    assert again.json()["error_description"].startswith("AADSTS54005:")


def test_a_code_is_short_lived(box, url, op):
    sandbox, _ = box
    code, verifier = sign_in(op, someone(url)["userName"])
    sandbox._codes[code]["expires"] -= 301  # five minutes later
    resp = redeem(op, code, verifier)
    assert resp.status_code == 400 and resp.json()["error_codes"] == [70008]


def test_the_code_verifier_is_checked(url, op):
    code, _ = sign_in(op, someone(url)["userName"])
    wrong = redeem(op, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert wrong.json()["error_description"].startswith("AADSTS501481:")
    code, _ = sign_in(op, someone(url)["userName"])
    missing = redeem(op, code, None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert "code_verifier" in missing.json()["error_description"]


def test_client_and_redirect_uri_are_checked_at_the_token_endpoint(url, op):
    who = someone(url)["userName"]
    code, verifier = sign_in(op, who)
    bad_secret = requests.post(
        op["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        | {"client_id": "workbench", "client_secret": "guess"},
        timeout=5,
    )
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    code, verifier = sign_in(op, who)
    elsewhere = redeem(op, code, verifier, redirect_uri="http://127.0.0.1:8000/elsewhere/")
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_grant"
    code, verifier = sign_in(op, who)
    unsupported = redeem(op, code, verifier, grant_type="password")
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"


# --- the authorization endpoint refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # no code_challenge at all
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        {"code_challenge": "x" * 43, "code_challenge_method": None},  # no method means plain
    ],
)
def test_pkce_is_required_with_s256(op, overrides):
    params = callback_params(authorize(op, **overrides))
    assert params["error"] == "invalid_request" and params["error_description"].startswith("AADSTS")
    assert params["state"] == "state-1" and "code" not in params


def test_other_bad_requests_go_back_to_the_app_with_an_error(op):
    challenge = pkce()[1]
    implicit = callback_params(authorize(op, code_challenge=challenge, response_type="id_token"))
    assert implicit["error"] == "unsupported_response_type"
    no_openid = callback_params(authorize(op, code_challenge=challenge, scope="profile"))
    assert no_openid["error"] == "invalid_scope" and no_openid["error_description"].startswith("AADSTS70011:")
    silent = callback_params(authorize(op, code_challenge=challenge, prompt="none"))
    assert silent["error"] == "login_required"


def test_an_unknown_client_or_reply_url_is_not_redirected_to(op):
    challenge = pkce()[1]
    stranger = authorize(op, code_challenge=challenge, client_id="someone-else")
    assert stranger.status_code == 400 and "AADSTS700016" in stranger.text and "Location" not in stranger.headers
    away = authorize(op, code_challenge=challenge, redirect_uri="https://evil.example/cb")
    assert away.status_code == 400 and "AADSTS50011" in away.text and "Location" not in away.headers


def test_wrong_password_stays_on_the_form(url, op):
    page = authorize(op, code_challenge=pkce()[1])
    resp = submit(op, page, someone(url)["userName"], password="guess")
    assert resp.status_code == 200 and "AADSTS50126" in resp.text and "name=ctx" in resp.text
    assert submit(op, resp, someone(url)["userName"]).status_code == 302  # the same page, right password


def test_cancel_answers_access_denied(url, op):
    resp = submit(op, authorize(op, code_challenge=pkce()[1]), "", password="", cancel="1")
    assert callback_params(resp)["error"] == "access_denied"


def test_a_user_deactivated_through_scim_cannot_sign_in(url, op):
    who = someone(url)
    code, verifier = sign_in(op, who["userName"], scope="openid profile email offline_access")
    tokens = redeem(op, code, verifier).json()
    assert tokens["refresh_token"]
    pending_code, pending_verifier = sign_in(op, who["userName"])

    scim_deactivate(url, scim_user(url, who["userName"])["id"])

    refused = submit(op, authorize(op, code_challenge=pkce()[1]), who["userName"])
    assert refused.status_code == 200 and "AADSTS50057" in refused.text
    late = redeem(op, pending_code, pending_verifier)  # a code from before the deactivation
    assert late.status_code == 400 and late.json()["error_codes"] == [50057]
    refresh = requests.post(
        op["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]} | CLIENT,
        timeout=5,
    )
    assert refresh.status_code == 400 and refresh.json()["error_codes"] == [50057]


def test_refresh_tokens_rotate_and_give_a_new_id_token(url, op):
    code, verifier = sign_in(op, someone(url)["userName"], scope="openid profile email offline_access")
    first = redeem(op, code, verifier).json()
    again = requests.post(
        op["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]} | CLIENT,
        timeout=5,
    )
    assert again.status_code == 200
    assert "nonce" not in verified(op, again.json()["id_token"])
    reused = requests.post(
        op["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]} | CLIENT,
        timeout=5,
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


# --- roles, userinfo, console -----------------------------------------------------------------------


def test_app_roles_follow_the_cost_center_rule_and_can_be_assigned(url, op):
    rows = assignments(url)
    by_role = {r: [a for a in rows if r in a["roles"]] for a in rows for r in a["roles"]}
    assert set(by_role) >= {"Workbench.Analyst", "Workbench.Engineer", "Workbench.Admin"}
    assert all(a["entities"] == ["*"] for a in by_role["Workbench.Engineer"])
    assert all(len(a["entities"]) == 1 and a["entities"] != ["*"] for a in by_role["Workbench.Analyst"])
    nobody = next(
        u
        for u in requests.get(
            f"{url}/scim/v2/Users", headers={"Authorization": f"Bearer {STATIC_TOKEN}"}, timeout=5
        ).json()["Resources"]
        if u["active"] and u["userName"] not in {a["userName"] for a in rows}
    )
    code, verifier = sign_in(op, nobody["userName"])
    assert "roles" not in verified(op, redeem(op, code, verifier).json()["id_token"])

    set_roles = requests.post(
        f"{url}/sandbox/app-roles",
        json={"user": nobody["userName"], "roles": ["Workbench.Auditor"], "entities": ["NW-DE", "NW-FR"]},
        timeout=5,
    )
    assert set_roles.status_code == 200
    code, verifier = sign_in(op, nobody["userName"])
    claims = verified(op, redeem(op, code, verifier).json()["id_token"])
    assert claims["roles"] == ["Workbench.Auditor"] and claims["entities"] == ["NW-DE", "NW-FR"]

    bad = requests.post(f"{url}/sandbox/app-roles", json={"user": nobody["userName"], "roles": ["Root"]}, timeout=5)
    assert bad.status_code == 400
    back = requests.post(f"{url}/sandbox/app-roles", json={"user": nobody["userName"], "roles": None}, timeout=5)
    assert back.json()["roles"] == []


def test_userinfo_has_names_but_no_roles(url, op):
    who = someone(url, "Workbench.Analyst")
    code, verifier = sign_in(op, who["userName"])
    body = redeem(op, code, verifier).json()
    info = requests.get(
        op["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5
    ).json()
    assert info["sub"] == verified(op, body["id_token"])["sub"] and info["email"] and "roles" not in info
    assert requests.get(op["userinfo_endpoint"], headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401


def test_logout_goes_back_to_a_loopback_url_only(op):
    back = requests.get(
        op["end_session_endpoint"],
        params={"post_logout_redirect_uri": "http://127.0.0.1:8000/accounts/login/"},
        allow_redirects=False,
        timeout=5,
    )
    assert back.status_code == 302 and back.headers["Location"].startswith("http://127.0.0.1:8000/accounts/login/")
    away = requests.get(
        op["end_session_endpoint"],
        params={"post_logout_redirect_uri": "https://evil.example/"},
        allow_redirects=False,
        timeout=5,
    )
    assert away.status_code == 200 and "signed out" in away.text


def test_the_console_says_how_to_sign_in(url, op):
    page = requests.get(f"{url}/", timeout=5).text
    assert "Sign in with Microsoft Entra ID" in page and "<code>sandbox</code>" in page
    assert op["issuer"] + "/.well-known/openid-configuration" in page
    assert "Workbench.Analyst" in page
