"""The identity sandbox as an OpenID Connect provider in Microsoft Entra ID's v2.0 shape: the directory's
users sign in to the workbench (authorization code flow with PKCE, RS256 ID tokens).

Routes (no bearer token, no injected faults; ``{tenant}`` is the tenant id ``TENANT_ID`` or its
domain ``northwind.example``):

- ``GET  /{tenant}/v2.0/.well-known/openid-configuration``: the discovery document; the issuer is
  ``http://<host>/{tenant id}/v2.0``.
- ``GET  /{tenant}/discovery/v2.0/keys``: the JWKS (one RSA key made at start, ``kid`` = its RFC 7638
  thumbprint).
- ``GET  /{tenant}/oauth2/v2.0/authorize``: checks the request, then shows a sign-in form.
  ``client_id`` must be the registered application (``workbench``) and ``redirect_uri`` a registered
  reply URL (option ``redirect_uris``, comma-separated) or any http URL on the loopback interface;
  otherwise an error page (no redirect, as Entra). Everything else that is wrong goes back to the
  application as ``?error=...&error_description=AADSTS...&state=...``: ``response_type`` other than
  ``code``, no ``openid`` scope, PKCE missing or not S256, ``prompt=none`` (no one is signed in here).
- ``POST /{tenant}/oauth2/v2.0/authorize``: the form. An active directory user (``userName`` or an
  e-mail address; the password is ``sandbox`` for everyone) goes back with a ``code`` (five minutes,
  once); a wrong password or a deactivated account (``active: false``, e.g. a SCIM PATCH or HR
  offboarding) stays on the form with AADSTS50126 / AADSTS50057. Cancel answers ``access_denied``.
- ``POST /{tenant}/oauth2/v2.0/token``: ``authorization_code`` (client secret in the body or HTTP
  Basic, not both; ``redirect_uri`` as in the request; ``code_verifier`` checked against the
  challenge), ``refresh_token`` (with ``offline_access``; rotated, refused once the user is
  deactivated) and ``client_credentials`` (the directory API's token, as at ``/oauth2/v2.0/token``).
  Errors in Entra's body: ``error``, ``error_description`` (``AADSTSnnnnn: ...``), ``error_codes``.
- ``GET  /{tenant}/oauth2/v2.0/logout``: back to ``post_logout_redirect_uri`` when it is allowed.
- ``GET  /oidc/userinfo``: Microsoft Graph's userinfo: names and e-mail, no roles (as Graph's).
- ``GET|POST /sandbox/app-roles``: the app role assignments (see ``approles.py``); a POST
  ``{"user": userName | employee number | id, "roles": [...], "entities": [...]}`` replaces the
  rule for that user (``"roles": null`` goes back to the rule).

The ID token: ``iss``, ``aud`` (the client id), ``iat``, ``nbf``, ``exp``, ``nonce``, ``oid`` (the
SCIM id), ``sub`` (pairwise), ``tid``, ``ver`` "2.0", ``uti``; with ``profile`` ``name`` and
``preferred_username`` (the ``userName``), with ``email`` ``email``; ``roles`` (app roles) and
``entities`` when assigned. Codes, access and refresh tokens live in memory: a restart signs
everyone out of the sandbox (not of the workbench) and makes a new key.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

from connectors.sandboxkit.kit import HttpError, Request

from . import approles, signin
from .oidc import (
    CODE_SECONDS,
    S256_CHALLENGE,
    SIGN_IN_PASSWORD,
    SIGN_IN_SECONDS,
    TENANT_DOMAIN,
    TENANT_ID,
    TOKEN_SECONDS,
    SigningKey,
    aadsts,
    discovery,
    id_token_claims,
    issuer,
    pairwise_sub,
    pkce_matches,
    redirect_allowed,
    token_error,
    with_query,
)
from .protocol import ENT

USERS = "Users"  # the store's collections
ASSIGNMENTS = "AppRoleAssignments"
APP_NAME = "Finance Exception Workbench"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OidcProvider:
    """Mixed into the SCIM sandbox (which brings ``route``, ``store``, ``lock``, ``count``, the client
    credentials and the client-credentials ``_token``)."""

    def oidc_setup(self) -> None:
        self.signing_key = SigningKey()
        self.redirect_uris = [u.strip() for u in str(self.options.get("redirect_uris") or "").split(",") if u.strip()]
        self._pending: dict[str, dict] = {}  # sign-in pages waiting for their form, by ctx
        self._codes: dict[str, dict] = {}
        self._redeemed: dict[str, float] = {}  # code -> when to forget it was used
        self._access: dict[str, dict] = {}
        self._refresh: dict[str, dict] = {}
        t = r"/(?P<tenant>[^/]+)"
        self.route("GET", t + r"/v2\.0/\.well-known/openid-configuration", self._oidc_discovery, auth=False)
        self.route("GET", t + r"/discovery/v2\.0/keys", self._oidc_keys, auth=False)
        self.route("GET", t + r"/oauth2/v2\.0/authorize", self._oidc_authorize, auth=False)
        self.route("POST", t + r"/oauth2/v2\.0/authorize", self._oidc_sign_in, auth=False)
        self.route("POST", t + r"/oauth2/v2\.0/token", self._oidc_token, auth=False)
        self.route("GET", t + r"/oauth2/v2\.0/logout", self._oidc_logout, auth=False)
        self.route("GET", r"/oidc/userinfo", self._oidc_userinfo, auth=False)
        self.route("GET", r"/sandbox/app-roles", self._app_roles, auth=False)
        self.route("POST", r"/sandbox/app-roles", self._app_role_assign, auth=False)

    # --- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _base(req: Request) -> str:
        return f"http://{req.headers.get('Host', '127.0.0.1')}"

    @staticmethod
    def _tenant_ok(req: Request) -> bool:
        return req.match["tenant"].lower() in (TENANT_ID, TENANT_DOMAIN)

    @staticmethod
    def _no_tenant(req: Request) -> str:
        return aadsts(
            90002,
            f"Tenant '{req.match['tenant']}' not found. Check to make sure you have the correct tenant ID "
            f"and are signing into the correct cloud. (This sandbox's tenant is {TENANT_ID}.)",
        )

    def _prune(self, now: float) -> None:
        for store in (self._pending, self._codes, self._access, self._refresh):
            for key in [k for k, v in store.items() if v["expires"] < now]:
                del store[key]
        for key in [k for k, until in self._redeemed.items() if until < now]:
            del self._redeemed[key]

    def _find_user(self, name: str) -> dict | None:
        name = name.strip().lower()
        if not name:
            return None
        for user in self.store.all(USERS):
            if str(user.get("userName", "")).lower() == name or any(
                str(e.get("value", "")).lower() == name for e in user.get("emails") or []
            ):
                return user
        return None

    def bosses(self) -> set[str]:
        """Ids of the users someone reports to."""
        return {m for u in self.store.all(USERS) if (m := (u.get(ENT, {}).get("manager") or {}).get("value"))}

    def assignment_of(self, user: dict, bosses: set[str] | None = None) -> dict:
        """The user's app roles and entities: set at run time, else by the cost center rule."""
        assigned = self.store.get(ASSIGNMENTS, user["id"])
        if assigned is not None and assigned.get("source") == "assigned":
            return assigned
        return approles.by_rule(user, user["id"] in (self.bosses() if bosses is None else bosses))

    # --- discovery and keys -------------------------------------------------------------------
    def _oidc_discovery(self, req: Request):
        if not self._tenant_ok(req):
            return 400, {"error": "invalid_tenant", "error_description": self._no_tenant(req), "error_codes": [90002]}
        return discovery(self._base(req), TENANT_ID)

    def _oidc_keys(self, req: Request):
        if not self._tenant_ok(req):
            return 400, {"error": "invalid_tenant", "error_description": self._no_tenant(req), "error_codes": [90002]}
        return self.signing_key.jwks(issuer(self._base(req)))

    # --- the authorization endpoint -----------------------------------------------------------
    def _oidc_authorize(self, req: Request):
        q = req.query
        if not self._tenant_ok(req):
            return 400, signin.error_page(self._no_tenant(req))
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        if not client_id:
            return 400, signin.error_page(
                aadsts(900144, "The request body must contain the following parameter: 'client_id'.")
            )
        if client_id != self.client_id:
            return 400, signin.error_page(
                aadsts(
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory '{TENANT_DOMAIN}'.",
                )
            )
        if not redirect_allowed(redirect_uri, self.redirect_uris):
            return 400, signin.error_page(
                aadsts(
                    50011,
                    f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                    f"configured for the application '{client_id}'.",
                )
            )
        state = q.get("state")

        def refuse(error: str, code: int, message: str):
            self.count("oidc.authorize_refused")
            params = {"error": error, "error_description": aadsts(code, message), "state": state}
            return 302, "", {"Location": with_query(redirect_uri, params)}

        scope = q.get("scope", "").split()
        challenge, method = q.get("code_challenge", ""), q.get("code_challenge_method", "")
        if q.get("response_type") != "code":
            return refuse(
                "unsupported_response_type",
                700054,
                f"response_type '{q.get('response_type', '')}' is not enabled for the application; use 'code'.",
            )
        if "openid" not in scope:
            return refuse(
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' isn't valid: '{' '.join(scope)}' has no 'openid'.",
            )
        if not challenge:
            return refuse(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required: send code_challenge with code_challenge_method=S256.",
            )
        if method != "S256":
            # Sandbox policy (Entra also takes "plain"): S256 only; a missing method would mean plain.
            return refuse(
                "invalid_request",
                9002329,
                f"code_challenge_method '{method or 'plain'}' is not allowed for this application: use S256.",
            )
        if not S256_CHALLENGE.match(challenge):
            return refuse(
                "invalid_request", 9002329, "code_challenge is not an S256 challenge (43 base64url characters)."
            )
        if q.get("prompt") == "none":
            return refuse("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
        ctx = secrets.token_urlsafe(24)
        now = time.time()
        with self.lock:
            self._prune(now)
            self._pending[ctx] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "nonce": q.get("nonce") or None,
                "scope": scope,
                "challenge": challenge,
                "expires": now + SIGN_IN_SECONDS,
            }
        return signin.sign_in_page(ctx=ctx, action=req.path, app=APP_NAME, username=q.get("login_hint", ""))

    def _oidc_sign_in(self, req: Request):
        if not self._tenant_ok(req):
            return 400, signin.error_page(self._no_tenant(req))
        form = req.form()
        ctx, now = form.get("ctx", ""), time.time()
        with self.lock:
            pending = self._pending.pop(ctx, None)
        if pending is None or pending["expires"] < now:
            return 400, signin.error_page(
                aadsts(50089, "The sign-in page expired. Go back to the application and sign in again.")
            )
        back = pending["redirect_uri"]
        if form.get("cancel"):
            params = {
                "error": "access_denied",
                "error_description": aadsts(65004, "User declined to consent to access the app."),
                "state": pending["state"],
            }
            return 302, "", {"Location": with_query(back, params)}
        username = form.get("username", "")
        user = self._find_user(username)
        problem = ""
        if user is None or not secrets.compare_digest(form.get("password", "").encode(), SIGN_IN_PASSWORD.encode()):
            problem = aadsts(50126, "Error validating credentials due to invalid username or password.")
        elif not user.get("active"):
            problem = aadsts(50057, "The user account is disabled.")
        if problem:
            self.count("oidc.sign_in_refused")
            with self.lock:
                self._pending[ctx] = pending
            return signin.sign_in_page(ctx=ctx, action=req.path, app=APP_NAME, username=username, error=problem)
        code = secrets.token_urlsafe(32)
        with self.lock:
            self._prune(now)
            self._codes[code] = {**pending, "user_id": user["id"], "expires": now + CODE_SECONDS}
        self.count("oidc.signed_in")
        params = {"code": code, "state": pending["state"], "session_state": str(uuid.uuid4())}
        return 302, "", {"Location": with_query(back, params)}

    # --- the token endpoint -------------------------------------------------------------------
    def _client_auth(self, req: Request, form: dict) -> tuple[str, str, str]:
        """(client id, secret, problem) from HTTP Basic (RFC 6749 §2.3.1) or the body."""
        header = req.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                raw = base64.b64decode(header[6:], validate=True).decode()
            except ValueError:
                return "", "", "The Authorization header is not valid Basic credentials."
            cid, _, secret = raw.partition(":")
            cid, secret = unquote_plus(cid), unquote_plus(secret)
            if form.get("client_secret"):
                return "", "", "Send the client secret once: in the Authorization header or in the body, not both."
            if form.get("client_id") and form["client_id"] != cid:
                return "", "", "client_id in the body differs from the one in the Authorization header."
            return cid, secret, ""
        return form.get("client_id", ""), form.get("client_secret", ""), ""

    def _oidc_token(self, req: Request):
        def fail(status: int, error: str, code: int, message: str):
            self.count("oidc.token_refused")
            return status, token_error(error, code, message), dict(NO_STORE)

        if not self._tenant_ok(req):
            return fail(400, "invalid_request", 90002, self._no_tenant(req).split(": ", 1)[1])
        form = req.form()
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            return self._token(req)
        client_id, secret, problem = self._client_auth(req, form)
        if problem:
            return fail(400, "invalid_request", 90023, problem)
        if not client_id:
            return fail(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
            )
        if client_id != self.client_id:
            return fail(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{TENANT_DOMAIN}'.",
            )
        if not secret:
            return fail(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not secrets.compare_digest(secret.encode(), self.client_secret.encode()):
            return fail(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if grant == "authorization_code":
            return self._redeem_code(req, form, client_id, fail)
        if grant == "refresh_token":
            return self._redeem_refresh(req, form, client_id, fail)
        return fail(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")

    def _redeem_code(self, req: Request, form: dict, client_id: str, fail):
        code, now = form.get("code", ""), time.time()
        if not code:
            return fail(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'code'."
            )
        with self.lock:
            grant = self._codes.pop(code, None)  # single use: gone whatever happens next
            used = code in self._redeemed
            self._redeemed[code] = now + 2 * CODE_SECONDS
        if grant is None:
            if used:
                return fail(
                    400,
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code.",
                )
            return fail(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: unknown code."
            )
        if grant["expires"] < now:
            return fail(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                "interactive authorization request for this user and resource.",
            )
        if grant["client_id"] != client_id:
            return fail(400, "invalid_grant", 700005, "Provided Authorization Code is intended for another app.")
        if form.get("redirect_uri", "") != grant["redirect_uri"]:
            return fail(
                400,
                "invalid_grant",
                500117,
                "The reply uri specified in the request isn't the one of the authorization request.",
            )
        verifier = form.get("code_verifier", "")
        if not verifier:
            return fail(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code_verifier'.",
            )
        if not pkce_matches(verifier, grant["challenge"]):
            return fail(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        user = self.store.get(USERS, grant["user_id"])
        if user is None or not user.get("active"):
            return fail(400, "invalid_grant", 50057, "The user account is disabled.")
        self.count("oidc.codes_redeemed")
        return 200, self._tokens(req, user, client_id, grant["scope"], grant["nonce"]), dict(NO_STORE)

    def _redeem_refresh(self, req: Request, form: dict, client_id: str, fail):
        token, now = form.get("refresh_token", ""), time.time()
        with self.lock:
            grant = self._refresh.pop(token, None)  # rotated: a refresh token is used once
        if grant is None or grant["expires"] < now or grant["client_id"] != client_id:
            return fail(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: refresh_token."
            )
        user = self.store.get(USERS, grant["user_id"])
        if user is None or not user.get("active"):
            return fail(400, "invalid_grant", 50057, "The user account is disabled.")
        return 200, self._tokens(req, user, client_id, grant["scope"], None), dict(NO_STORE)

    def _tokens(self, req: Request, user: dict, client_id: str, scope: list[str], nonce: str | None) -> dict:
        now = int(time.time())
        claims = id_token_claims(
            user=user,
            assignment=self.assignment_of(user),
            client_id=client_id,
            iss=issuer(self._base(req)),
            scope=scope,
            nonce=nonce,
            now=now,
        )
        access = secrets.token_urlsafe(32)
        out: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scope if s != "offline_access") or "openid",
            "expires_in": TOKEN_SECONDS - 1,
            "ext_expires_in": TOKEN_SECONDS - 1,
            "access_token": access,
            "id_token": self.signing_key.sign(claims),
        }
        with self.lock:
            self._access[access] = {"user_id": user["id"], "client_id": client_id, "expires": now + TOKEN_SECONDS}
            if "offline_access" in scope:
                refresh = secrets.token_urlsafe(48)
                self._refresh[refresh] = {
                    "user_id": user["id"],
                    "client_id": client_id,
                    "scope": scope,
                    "expires": now + 90 * 86400,
                }
                out["refresh_token"] = refresh
        return out

    # --- userinfo, logout ---------------------------------------------------------------------
    def _oidc_userinfo(self, req: Request):
        header = req.headers.get("Authorization", "")
        with self.lock:
            grant = self._access.get(header[7:]) if header.startswith("Bearer ") else None
        user = self.store.get(USERS, grant["user_id"]) if grant and grant["expires"] >= time.time() else None
        if user is None:
            raise HttpError(
                401,
                {"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        name = user.get("name") or {}
        return {
            "sub": pairwise_sub(user["id"], grant["client_id"]),
            "name": user.get("displayName", ""),
            "given_name": name.get("givenName", ""),
            "family_name": name.get("familyName", ""),
            "email": next((e.get("value") for e in user.get("emails") or []), user["userName"]),
        }

    def _oidc_logout(self, req: Request):
        if not self._tenant_ok(req):
            return 400, signin.error_page(self._no_tenant(req))
        back = req.query.get("post_logout_redirect_uri", "")
        if back and redirect_allowed(back, self.redirect_uris):
            return 302, "", {"Location": with_query(back, {"state": req.query.get("state")})}
        return signin.signed_out_page()

    # --- app role assignments (sandbox control) -----------------------------------------------
    def _app_roles(self, req: Request):
        with self.lock:
            users = sorted(self.store.all(USERS), key=lambda u: u.get(ENT, {}).get("employeeNumber") or u["userName"])
            bosses = self.bosses()
            rows = [(u, self.assignment_of(u, bosses)) for u in users]
        return {
            "roles": approles.APP_ROLES,
            "password": SIGN_IN_PASSWORD,
            "assignments": [
                {
                    "id": u["id"],
                    "userName": u["userName"],
                    "employeeNumber": u.get(ENT, {}).get("employeeNumber", ""),
                    "active": bool(u.get("active")),
                    **a,
                }
                for u, a in rows
                if a.get("roles")
            ],
        }

    def _app_role_assign(self, req: Request):
        body = req.json() or {}
        if not isinstance(body, dict):
            raise HttpError(400, {"error": "invalid_request", "error_description": "a JSON object, please"})
        key = str(body.get("user") or "")
        with self.lock:
            user = (
                self.store.get(USERS, key)
                or self._find_user(key)
                or next((u for u in self.store.all(USERS) if key and u.get(ENT, {}).get("employeeNumber") == key), None)
            )
            if user is None:
                raise HttpError(404, {"error": "not_found", "error_description": f"No directory user {key!r}"})
            try:
                # "roles": null hands the user back to the rule (a marker: the store keeps documents, never drops them).
                assignment = {"source": "rule"} if body.get("roles") is None else approles.normalized(body)
            except ValueError as exc:
                raise HttpError(400, {"error": "invalid_request", "error_description": str(exc)}) from None
            self.store.put(ASSIGNMENTS, user["id"], assignment)
            return {"userName": user["userName"], **self.assignment_of(user)}
