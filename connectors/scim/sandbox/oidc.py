"""The pieces of OpenID Connect the sandbox speaks, in Microsoft Entra ID's v2.0 shape (no state: the
server's ``provider.py`` applies them): the tenant and client, the discovery document, the signing
key and its JWKS entry, ID token claims, PKCE, redirect URI checks and Entra's error shapes.

Where the shapes come from: OpenID Connect Core 1.0 and Discovery 1.0 (claims, ``nonce``, the
discovery document), RFC 6749 (code grant, error bodies, client authentication), RFC 7636 (PKCE
S256), RFC 7638 (the ``kid`` as a JWK thumbprint), and Microsoft's public identity platform docs:
the v2.0 endpoint paths (``/{tenant}/v2.0/.well-known/openid-configuration``,
``/{tenant}/oauth2/v2.0/authorize|token|logout``, ``/{tenant}/discovery/v2.0/keys``), the ID token
claims (``oid``, ``tid``, ``preferred_username``, ``ver``, app ``roles``), the issuer
``.../{tenant}/v2.0``, ``AADSTSnnnnn:`` error descriptions with ``error_codes``, ``trace_id``,
``correlation_id`` and ``timestamp`` in token errors.

Sandbox choices (not Entra's): PKCE with S256 is required (Entra lets a confidential web app skip it
and allows ``plain``); the code of the refusal of a non-S256 challenge (AADSTS9002329) is the
sandbox's own; any http(s) reply URL on the loopback interface counts as registered; the ``entities`` claim (legal entity codes, or ``"*"``) stands for a directory
extension claim; ``sub`` is pairwise per application, as Entra's, but derived by a simple hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

# The sandbox's directory (tenant) and the one registered application: the workbench.
TENANT_ID = "7d3a9c2e-5b1f-4e8a-9c6d-2f0b8e4a1c35"
TENANT_DOMAIN = "northwind.example"
CLIENT_ID = "workbench"
CLIENT_SECRET = "sandbox-secret"
SIGN_IN_PASSWORD = "sandbox"  # every active directory user signs in with it (a sandbox, not a directory)

SCOPES = ["openid", "profile", "email", "offline_access"]
CODE_SECONDS = 300  # an authorization code lives five minutes and is redeemed once
SIGN_IN_SECONDS = 900  # a sign-in page waits this long for its form
TOKEN_SECONDS = 3600
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
# RFC 7636 §4.1: 43-128 unreserved characters; an S256 challenge is 43 base64url characters.
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_matches(verifier: str, challenge: str) -> bool:
    return bool(VERIFIER.match(verifier or "")) and secrets.compare_digest(s256(verifier), challenge)


class SigningKey:
    """An RSA key made when the sandbox starts (a restart rotates it; relying parties re-read the JWKS)."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.private.public_key().public_numbers()
        n = b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        e = b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
        thumbprint = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True)
        self.kid = b64url(hashlib.sha256(thumbprint.encode()).digest())  # RFC 7638
        self.public_jwk = {"kty": "RSA", "use": "sig", "kid": self.kid, "n": n, "e": e}

    def jwks(self, issuer: str) -> dict:
        return {"keys": [{**self.public_jwk, "issuer": issuer}]}

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})


def issuer(base: str, tenant: str = TENANT_ID) -> str:
    return f"{base}/{tenant}/v2.0"


def discovery(base: str, tenant: str = TENANT_ID) -> dict:
    """``GET /{tenant}/v2.0/.well-known/openid-configuration``, trimmed to what the sandbox does."""
    oauth = f"{base}/{tenant}/oauth2/v2.0"
    return {
        "issuer": issuer(base, tenant),
        "authorization_endpoint": f"{oauth}/authorize",
        "token_endpoint": f"{oauth}/token",
        "end_session_endpoint": f"{oauth}/logout",
        "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SCOPES),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "nonce",
            "oid",
            "tid",
            "ver",
            "name",
            "preferred_username",
            "email",
            "roles",
            "entities",
        ],
        "request_uri_parameter_supported": False,
        "http_logout_supported": True,
        "tenant_region_scope": "EU",
        "cloud_instance_name": "sandbox",
    }


def pairwise_sub(oid: str, client_id: str, tenant: str = TENANT_ID) -> str:
    """Entra's ``sub`` differs per application for the same person (``oid`` does not)."""
    return b64url(hashlib.sha256(f"{tenant}|{client_id}|{oid}".encode()).digest())


def id_token_claims(
    *,
    user: dict,
    assignment: dict,
    client_id: str,
    iss: str,
    scope: list[str],
    nonce: str | None,
    now: int,
    tenant: str = TENANT_ID,
) -> dict:
    """An Entra v2.0 ID token's claims for a SCIM User and its app role assignment."""
    claims: dict[str, Any] = {
        "aud": client_id,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_SECONDS,
        "oid": user["id"],
        "sub": pairwise_sub(user["id"], client_id, tenant),
        "tid": tenant,
        "uti": b64url(secrets.token_bytes(16)),
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    if "profile" in scope:
        claims["name"] = user.get("displayName") or user["userName"]
        claims["preferred_username"] = user["userName"]
    if "email" in scope:
        email = next((e.get("value") for e in user.get("emails") or [] if e.get("primary")), None)
        claims["email"] = email or next((e.get("value") for e in user.get("emails") or []), user["userName"])
    if assignment.get("roles"):
        claims["roles"] = list(assignment["roles"])
    if assignment.get("entities"):
        claims["entities"] = list(assignment["entities"])
    return claims


# --- errors ---------------------------------------------------------------------------------------


def aadsts(code: int, message: str) -> str:
    return f"AADSTS{code}: {message}"


def token_error(error: str, code: int, message: str) -> dict:
    """A token endpoint error body as Entra writes it (RFC 6749 §5.2 plus Entra's extras)."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error,
        "error_description": f"{aadsts(code, message)} Trace ID: {trace} Correlation ID: {correlation} "
        f"Timestamp: {stamp}",
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
    }


def with_query(uri: str, params: dict) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode({k: v for k, v in params.items() if v is not None})


def redirect_allowed(uri: str, registered: list[str]) -> bool:
    """A registered reply URL, or any http(s) URL on the loopback interface (a sandbox convenience:
    the workbench's live test servers pick their port at random)."""
    if not uri or "#" in uri:
        return False
    if uri in registered:
        return True
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK
