"""Outgoing chat messages: the two incoming-webhook shapes we post, and which webhook URLs we accept.

The worker posts to a URL an admin typed, from inside our network: without a check, a rule could
make it call an internal service or a cloud metadata endpoint (server-side request forgery). So a
webhook must be https to a public host; plain http is allowed only to this machine (tests, the
demo's local receiver). Redirects are not followed when posting (sync/alert_chat.py), so an
accepted host cannot bounce the call elsewhere.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
SLACK, TEAMS = "slack", "teams"


class WebhookUrlError(ValueError):
    pass


def webhook_url_check(url: str) -> str:
    """The URL, stripped, if the worker may post to it; WebhookUrlError saying why not otherwise."""
    url = (url or "").strip()
    if len(url) > 500 or "\x00" in url or any(c.isspace() for c in url):
        raise WebhookUrlError("Enter a webhook URL of at most 500 characters, without spaces.")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise WebhookUrlError("This is not a URL.") from exc
    if not host:
        raise WebhookUrlError("Enter the full webhook URL, starting with https://.")
    if parts.username or parts.password:
        raise WebhookUrlError("Leave user and password out of the URL; chat webhooks carry their secret in the path.")
    if parts.scheme == "http":
        if host not in LOCAL_HOSTS:
            raise WebhookUrlError(
                "Use https: plain http is only allowed to this machine (localhost), for tests and demos."
            )
        return url
    if parts.scheme != "https":
        raise WebhookUrlError("Use an https:// URL.")
    if host in LOCAL_HOSTS or host.endswith((".local", ".internal", ".localhost")):
        raise WebhookUrlError("This host is inside our network; a chat webhook must be a public service.")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return url  # a host name: chat services are named hosts
    if not address.is_global:
        raise WebhookUrlError("This address is inside our network; a chat webhook must be a public service.")
    return url


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn reads &, < and > as markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_payload(fmt: str, *, title: str, text: str, link: str, resolved: bool) -> dict:
    """The JSON body of a Slack (`{"text", "blocks"}`) or Teams (MessageCard) incoming webhook."""
    if fmt == SLACK:
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack_escape(title)}*"}}]
        if text:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(text)[:2900]}})
        if link:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "Open in the workbench"}, "url": link}
                    ],
                }
            )
        # Escaped in the fallback text too: a rule name or vendor message must not ping <!channel>.
        return {"text": _slack_escape(title), "blocks": blocks}
    if fmt == TEAMS:
        card = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title,
            "themeColor": "2EB886" if resolved else "D13438",
            "title": title,
            "text": text or title,
        }
        if link:
            card["potentialAction"] = [
                {"@type": "OpenUri", "name": "Open in the workbench", "targets": [{"os": "default", "uri": link}]}
            ]
        return card
    raise ValueError(f"unknown chat format {fmt!r}")
