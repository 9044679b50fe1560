"""The sandbox's HTML console (``GET /``): every directory user, newest change first, with an
"Offboard" button (``POST /sandbox/deactivate``) on active employees. Every value goes through
``html.escape``: names are user input."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from .protocol import ENT


def render(users: list[dict], user_of: Callable[[str], dict | None]) -> str:
    """``users`` in display order; ``user_of(id)`` finds a manager's User."""
    e = escape
    rows = []
    for u in users:
        ext, boss = u.get(ENT, {}), (u.get(ENT, {}).get("manager") or {}).get("value", "")
        manager = (user_of(boss) or {}).get("displayName", "") if boss else ""
        action = ""
        if u.get("active") and ext.get("employeeNumber"):
            action = (
                '<form method=post action="/sandbox/deactivate"><input type=hidden name=employee_number '
                f'value="{e(ext["employeeNumber"])}"><button>Offboard</button></form>'
            )
        rows.append(
            f"<tr><td>{e(u.get('displayName', ''))}<br><small>{e(u['userName'])}</small></td>"
            f"<td>{e(ext.get('employeeNumber', ''))}</td><td>{e(ext.get('organization', ''))}</td>"
            f"<td>{e(ext.get('costCenter', ''))}</td><td>{e(manager)}</td>"
            f"<td>{'active' if u.get('active') else '<b>inactive</b>'}</td>"
            f"<td>{e(u['meta']['lastModified'])}</td><td>{action}</td></tr>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>SCIM sandbox</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}"
        "small{color:#5b6b7b}form{margin:0}</style></head><body>"
        "<h1>SCIM sandbox &mdash; directory users</h1>"
        f"<p><small>{len(users)} users, {sum(1 for u in users if u.get('active'))} active.</small></p>"
        "<table><thead><tr><th>User</th><th>Employee no.</th><th>Organization</th><th>Cost center</th>"
        "<th>Manager</th><th>Status</th><th>Last modified</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
