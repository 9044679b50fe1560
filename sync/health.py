"""Connection health: one incident per outage instead of one exception per record.

Consecutive transient failures past SYNC_OUTAGE_THRESHOLD (or any credential failure) mark the
connection `down` and raise a single CONNECTOR_UNAVAILABLE item for the integration team. While a
connection is down its outbound writes are held (not attempted, not dying); when a call succeeds
again the incident resolves itself and the held writes are released.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors import registry
from connectors.base import ConfigError
from workbench import jobs
from workbench.models import Connection, ExceptionItem
from workbench.secrets import SecretUnreadable, unsealed
from workbench.services.exception_items import exception_item_raise, exception_items_resolve
from workbench.services.incidents import incident_holdings_refresh
from workbench.services.snooze import connection_wake

log = logging.getLogger(__name__)


def connector_for(connection: Connection):
    try:
        config = unsealed(connection.config or {})
    except SecretUnreadable as exc:
        raise ConfigError(str(exc)) from exc
    return registry.build(connection.kind, resolve_secrets(config))


def resolve_secrets(config: dict) -> dict:
    """Config values written as "env:NAME" come from the environment, so secrets need not live in the DB."""
    out = {}
    for key, value in config.items():
        if isinstance(value, str) and value.startswith("env:"):
            name = value[4:]
            if name not in os.environ:
                raise ConfigError(f"setting {key!r} names environment variable {name}, which is not set")
            value = os.environ[name]
        out[key] = value
    return out


def incident_fingerprint(connection: Connection) -> str:
    return f"CONNECTOR_UNAVAILABLE:conn{connection.pk}"


def record_success(connection: Connection) -> None:
    if connection.health == Connection.Health.OK and connection.consecutive_failures == 0:
        return
    was_down = connection.health == Connection.Health.DOWN
    with transaction.atomic():
        Connection.objects.filter(pk=connection.pk).update(
            health=Connection.Health.OK, consecutive_failures=0, last_ok_at=timezone.now(), down_since=None
        )
        connection.health, connection.consecutive_failures = Connection.Health.OK, 0
        incident = ExceptionItem.objects.filter(fingerprint=incident_fingerprint(connection))
        if was_down:
            incident_holdings_refresh(connection=connection, released=True)  # before it is resolved
        exception_items_resolve(
            items=incident, action="recovered", reason=f"{connection.name} answers again; held writes released."
        )
        connection_wake(connection)  # items snoozed until it recovers
    if was_down:
        log.info("connection %s recovered", connection.name)
        jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)


def error_text(exc: Exception) -> str:
    """A connection's failure in a person's words (no Python class names on screen)."""
    kind = {
        "TransientError": "It did not answer in time or was unavailable",
        "ConfigError": "It refused the connection's settings or credentials",
        "MalformedPayload": "It sent something that cannot be read",
        "Rejected": "It refused the request",
    }.get(exc.__class__.__name__, "The call failed")
    return f"{kind}: {exc}"


def record_failure(connection: Connection, error: Exception) -> bool:
    """Count a failure; returns True if the connection is (now) down."""
    message = error_text(error)[:2000]
    Connection.objects.filter(pk=connection.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_error=message
    )
    connection.refresh_from_db(fields=["consecutive_failures", "health"])
    if isinstance(error, ConfigError) or connection.consecutive_failures >= settings.SYNC_OUTAGE_THRESHOLD:
        if connection.health != Connection.Health.DOWN:
            # down_since only when it goes down: alerts measure the outage from here (services/alerts.py).
            Connection.objects.filter(pk=connection.pk).exclude(health=Connection.Health.DOWN).update(
                health=Connection.Health.DOWN, down_since=timezone.now()
            )
            connection.health = Connection.Health.DOWN
            log.warning("connection %s is down: %s", connection.name, message)
        what = "rejects our credentials" if isinstance(error, ConfigError) else "is not answering"
        exception_item_raise(
            code="CONNECTOR_UNAVAILABLE",
            fp=incident_fingerprint(connection),
            connection=connection,
            message=f"{connection.name} {what} ({connection.consecutive_failures} failed calls in a row). "
            f"Outbound writes are held and will be replayed when it recovers. Last error: {message}",
            detail={"last_error": message, "what": what},
        )
        # Its money at risk: the writes the outage holds (each probe counts the ones queued since).
        incident_holdings_refresh(connection=connection)
        return True
    return False


def check_connection(connection: Connection) -> bool:
    """Ask the connector's check(); update health either way."""
    try:
        result = connector_for(connection).check()
    except Exception as exc:  # noqa: BLE001 - a check must always come back with an answer
        record_failure(connection, exc)
        return False
    if result.ok:
        record_success(connection)
        return True
    record_failure(
        connection,
        ConfigError(result.message) if "credential" in result.message.lower() else RuntimeError(result.message),
    )
    return False
