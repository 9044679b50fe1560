"""Connection secrets at rest: encrypted (Fernet), or held only as `env:NAME` references.

A config value whose key names a secret (client_secret, token, password, api_key...) is stored as
"enc:<Fernet token>" whatever path saved it; "env:NAME" values stay references to the
environment. The key is CONNECTION_SECRETS_KEY if set, else derived from SECRET_KEY (changing
either makes stored secrets unreadable: re-enter them). Screens and the admin show them masked.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from workbench.errors import WorkbenchError

MASK = "••••••••"
_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "private")


class SecretUnreadable(WorkbenchError):
    pass


def is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


def _fernet() -> Fernet:
    material = getattr(settings, "CONNECTION_SECRETS_KEY", "") or settings.SECRET_KEY
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"connection-secrets:{material}".encode()).digest()))


def sealed(config: dict) -> dict:
    """The config as stored: plain secret values encrypted, references and ciphertext left alone."""
    out = {}
    for key, value in (config or {}).items():
        if is_secret(key) and isinstance(value, str) and value and not value.startswith(("env:", "enc:")):
            value = "enc:" + _fernet().encrypt(value.encode()).decode()
        out[key] = value
    return out


def unsealed(config: dict) -> dict:
    """The config as a connector needs it (env: references are resolved later, by sync)."""
    out = {}
    for key, value in (config or {}).items():
        if isinstance(value, str) and value.startswith("enc:"):
            try:
                value = _fernet().decrypt(value[4:].encode()).decode()
            except InvalidToken as exc:
                raise SecretUnreadable(
                    f"setting {key!r} was encrypted with another key (SECRET_KEY or CONNECTION_SECRETS_KEY "
                    "changed): enter it again"
                ) from exc
        out[key] = value
    return out


def masked(config: dict) -> dict:
    """The config for a screen or the audit trail: secret values masked, nested settings too."""
    return {
        k: (
            MASK
            if is_secret(k) and isinstance(v, str) and v and not v.startswith("env:")
            else masked(v)
            if isinstance(v, dict)
            else v
        )
        for k, v in (config or {}).items()
    }


def merged(new: dict, old: dict) -> dict:
    """An edited config where a secret left as the mask keeps its stored value."""
    return {k: (old.get(k, "") if is_secret(k) and v == MASK else v) for k, v in (new or {}).items()}
