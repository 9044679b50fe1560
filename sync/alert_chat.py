"""Alerts, every minute: evaluate the rules (domain), then post their chat messages.

Each chat message is claimed first (a conditional UPDATE), then posted outside any transaction with
a short timeout and a few retries with backoff; the outcome is written back on the delivery row.
A chat server that is down, slow or refusing shows as "failed" on the firing on the Alerts screen and
never stops the evaluator or the other messages.
"""

from __future__ import annotations

import logging
import time

import requests
from django.conf import settings

from workbench.chat import WebhookUrlError, webhook_url_check
from workbench.services.alerts import alert_chat_message, alert_chat_recorded, alert_chats_claim, alerts_evaluate

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 10)  # connect, read (seconds)
ATTEMPTS = 3


def chat_post(url: str, payload: dict) -> tuple[bool, int, str]:
    """Post one message: (delivered, attempts made, last error). Retries timeouts, 429 and 5xx."""
    try:
        webhook_url_check(url)  # again at send time: a row saved before the check existed is refused too
    except WebhookUrlError as exc:
        return False, 0, f"Not sent: {exc}"
    backoff = float(getattr(settings, "ALERT_CHAT_BACKOFF", 1.0))
    error = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # No redirects: an accepted host must not bounce the call inside our network (SSRF).
            response = requests.post(url, json=payload, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            error = f"No answer from the chat server: {exc.__class__.__name__}"
        else:
            if 200 <= response.status_code < 300:
                return True, attempt, ""
            error = f"The chat server answered {response.status_code}: {response.text[:300]}"
            if response.status_code != 429 and response.status_code < 500:
                return False, attempt, error  # refused (bad URL, revoked hook): trying again will not help
        if attempt < ATTEMPTS:
            time.sleep(backoff * 2 ** (attempt - 1))
    return False, ATTEMPTS, error


def alert_chats_send(*, limit: int = 50) -> dict[str, int]:
    counts = {"chat_sent": 0, "chat_failed": 0}
    for delivery in alert_chats_claim(limit=limit):
        try:
            url, payload = alert_chat_message(delivery)
            ok, attempts, error = chat_post(url, payload)
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the others
            log.exception("chat delivery %s failed", delivery.pk)
            ok, attempts, error = False, delivery.attempts + 1, f"Could not send: {exc.__class__.__name__}"
        alert_chat_recorded(delivery=delivery, ok=ok, attempts=attempts, error=error)
        counts["chat_sent" if ok else "chat_failed"] += 1
    return counts


def alerts_run() -> dict[str, int]:
    """The evaluator's task body: fire and resolve, then deliver chat messages."""
    summary = alerts_evaluate()
    summary.update(alert_chats_send())
    return summary
