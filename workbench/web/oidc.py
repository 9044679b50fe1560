"""Single sign-on with OpenID Connect (Microsoft Entra ID v2.0), through mozilla-django-oidc.

The library runs the authorization code flow (state, nonce and PKCE S256 kept in the session, the
code redeemed at the token endpoint, the ID token's RS256 signature checked against the provider's
JWKS). On top of it, here:

- the provider's endpoints come from the settings, or from its discovery document
  (`OIDC_OP_DISCOVERY_URL`), read when a sign-in needs them, never at start-up;
- the ID token is also checked for audience, issuer, expiry and not-before (the library checks the
  signature and the nonce only), and its verified claims are the user info: Entra's userinfo
  endpoint has no app roles;
- the claims map to an account (`workbench.services.accounts.account_sign_in_sso`): the sign-in
  name, the app roles (`ROLE_CLAIMS`) and the legal entities (the `entities` claim, codes or "*");
  no known role, no sign-in;
- with `OIDC_RP_CLIENT_ID` unset, single sign-on is off: its URLs answer 404 and the login page
  offers only the password form.

Routed under /oidc/ (`urlpatterns` below: the library's views, reachable without a login).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView, OIDCLogoutView

from workbench.roles import ADMIN, ANALYST, AUDITOR, ENGINEER, MANAGER
from workbench.services.accounts import SignInRefused, SsoIdentity, account_sign_in_sso

log = logging.getLogger(__name__)

# App role values (the `roles` claim) -> role groups. Entra app roles are defined on the app registration.
ROLE_CLAIMS = {
    "Workbench.Analyst": ANALYST,
    "Workbench.Manager": MANAGER,
    "Workbench.Engineer": ENGINEER,
    "Workbench.Admin": ADMIN,
    "Workbench.Auditor": AUDITOR,
}
ALL_ENTITIES = "*"
DISCOVERY_SECONDS = 3600  # how long a discovery document is trusted before it is read again
LEEWAY_SECONDS = 60  # clock skew allowed on exp/nbf/iat
OAUTH_ERROR = re.compile(r"^[a-z_]{1,40}$")  # RFC 6749 error codes: access_denied, invalid_request...

_discovered: dict[str, tuple[float, dict]] = {}
_discovered_lock = threading.Lock()


def sso_enabled() -> bool:
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def sso(request) -> dict:
    """Context processor: whether the login page offers single sign-on."""
    return {"sso_enabled": sso_enabled()}


def _discovery() -> dict:
    url = getattr(settings, "OIDC_OP_DISCOVERY_URL", "")
    if not url:
        return {}
    now = time.monotonic()
    with _discovered_lock:
        cached = _discovered.get(url)
    if cached and now - cached[0] < DISCOVERY_SECONDS:
        return cached[1]
    resp = requests.get(url, timeout=getattr(settings, "OIDC_TIMEOUT", None) or 10)
    resp.raise_for_status()
    doc = resp.json()
    with _discovered_lock:
        _discovered[url] = (now, doc)
    return doc


def provider(setting: str, key: str) -> str:
    """An endpoint of the identity provider: its setting if set, else the discovery document's `key`."""
    return getattr(settings, setting, "") or str(_discovery().get(key) or "")


# --- the authentication backend ------------------------------------------------------------------


class EntraIdBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, with Entra's claims mapped to roles and entity scope."""

    def __init__(self, *args, **kwargs):
        # Django builds a backend for every request that has a session (get_user): no settings
        # checks or network here; the provider is read when someone signs in.
        self.UserModel = get_user_model()

    # The library reads these as attributes; here they follow the settings at the time of use.
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_RP_CLIENT_SECRET = property(lambda self: settings.OIDC_RP_CLIENT_SECRET)
    OIDC_RP_SIGN_ALGO = property(lambda self: getattr(settings, "OIDC_RP_SIGN_ALGO", "RS256"))
    OIDC_RP_IDP_SIGN_KEY = property(lambda self: getattr(settings, "OIDC_RP_IDP_SIGN_KEY", None))
    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: provider("OIDC_OP_TOKEN_ENDPOINT", "token_endpoint"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: provider("OIDC_OP_USER_ENDPOINT", "userinfo_endpoint"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: provider("OIDC_OP_JWKS_ENDPOINT", "jwks_uri"))

    def authenticate(self, request, **kwargs):
        # Only the OIDC callback calls authenticate() with these (a password login passes username/password).
        if not sso_enabled() or "username" in kwargs or "password" in kwargs or "nonce" not in kwargs:
            return None
        if not self.OIDC_RP_IDP_SIGN_KEY and not self.OIDC_OP_JWKS_ENDPOINT:
            raise SuspiciousOperation("Single sign-on has no JWKS endpoint to check ID token signatures with.")
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        # The library's get_user returns deactivated users too; Django's refuses them (is_active).
        return ModelBackend.get_user(self, user_id)

    def _verify_jws(self, payload, key):
        """The signature (as the library does) and the claims the library leaves out: aud, iss, exp, nbf, iat."""
        alg = self.OIDC_RP_SIGN_ALGO
        try:
            header = jwt.get_unverified_header(payload)
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"The ID token is not a JWT: {exc}") from exc
        if header.get("alg") != alg:
            raise SuspiciousOperation(f"The ID token is signed with {header.get('alg')!r}, not {alg}.")
        issuer = provider("OIDC_OP_ISSUER", "issuer")
        try:
            return jwt.decode(
                payload,
                key,
                algorithms=[alg],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=issuer or None,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc

    def get_userinfo(self, access_token, id_token, payload):
        # The verified ID token is the user info: Entra's userinfo (Microsoft Graph) carries no roles.
        return payload

    def verify_claims(self, claims):
        return bool(claims.get("sub")) and bool(claims.get("preferred_username") or claims.get("email"))

    def identity(self, claims: dict) -> SsoIdentity:
        raw_roles = claims.get("roles") or []
        raw_roles = [raw_roles] if isinstance(raw_roles, str) else raw_roles
        entities = claims.get("entities") or []
        entities = [entities] if isinstance(entities, str) else entities
        first, last = claims.get("given_name", ""), claims.get("family_name", "")
        if not (first or last) and claims.get("name"):
            first, _, last = str(claims["name"]).partition(" ")
        return SsoIdentity(
            username=str(claims.get("preferred_username") or claims.get("email") or ""),
            email=str(claims.get("email") or ""),
            first_name=str(first),
            last_name=str(last),
            roles=frozenset(ROLE_CLAIMS[r] for r in raw_roles if r in ROLE_CLAIMS),
            entity_codes=frozenset(str(e) for e in entities if e != ALL_ENTITIES),
            all_entities=ALL_ENTITIES in entities,
        )

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            raise SuspiciousOperation("The ID token names no user (sub, preferred_username or email).")
        try:
            return account_sign_in_sso(identity=self.identity(claims))
        except SignInRefused as exc:
            log.warning("single sign-on refused for %s: %s", claims.get("preferred_username"), exc)
            self.request.oidc_refused = str(exc)
            return None


# --- views ------------------------------------------------------------------------------------------


class AuthenticationRequestView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider's authorization endpoint (state, nonce, PKCE by the library)."""

    def __init__(self, *args, **kwargs):
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = getattr(settings, "OIDC_RP_CLIENT_ID", "")

    def get(self, request):
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider("OIDC_OP_AUTHORIZATION_ENDPOINT", "authorization_endpoint")
        except requests.RequestException as exc:
            log.warning("single sign-on: the identity provider's discovery document is unreachable: %s", exc)
            messages.error(request, "Single sign-on is unavailable right now: the identity provider does not answer.")
            return redirect(settings.LOGIN_URL)
        return super().get(request)


class AuthenticationCallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer: the library redeems the code and signs the person in, or it does not."""

    def get(self, request):
        try:
            return super().get(request)
        except (SuspiciousOperation, requests.RequestException) as exc:
            # A forged or stale state, a token that does not verify, a provider that refuses or is down.
            log.warning("single sign-on failed: %s", exc)
            return self.login_failure()

    def login_failure(self):
        # Our own reason, or the provider's OAuth error code; never its free text (a crafted link could carry any).
        error = self.request.GET.get("error", "")
        reason = getattr(self.request, "oidc_refused", "") or (
            f"The identity provider answered {error}." if OAUTH_ERROR.match(error) else ""
        )
        messages.error(self.request, f"Single sign-on did not sign you in. {reason}".strip())
        return super().login_failure()


def _sso_only(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)

    return wrapped


urlpatterns = [
    path(
        "callback/",
        login_not_required(_sso_only(AuthenticationCallbackView.as_view())),
        name="oidc_authentication_callback",
    ),
    path(
        "authenticate/",
        login_not_required(_sso_only(AuthenticationRequestView.as_view())),
        name="oidc_authentication_init",
    ),
    path("logout/", _sso_only(OIDCLogoutView.as_view()), name="oidc_logout"),
]
