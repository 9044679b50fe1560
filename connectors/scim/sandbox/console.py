"""The sandbox's HTML console (``GET /``): how to sign in (OpenID Connect), then every directory user,
newest change first, with their app roles and an "Offboard" button (``POST /sandbox/deactivate``) on
active employees. Every value goes through ``html.escape``: names are user input."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from .protocol import ENT


def _sign_in_panel(info: dict, users: list[dict], roles_of: Callable[[dict], dict]) -> str:
    e = escape
    examples: dict[str, dict] = {}
    for u in sorted(users, key=lambda u: u.get(ENT, {}).get("employeeNumber") or u["userName"]):
        for role in roles_of(u).get("roles") or []:
            if u.get("active") and role not in examples:
                examples[role] = u
    rules = "".join(
        f"<li>cost center {e(cc)}: <code>{e(role)}</code>, {e(where)}</li>" for cc, role, where in info["rules"]
    )
    sample = "".join(f"<li><code>{e(role)}</code>: {e(u['userName'])}</li>" for role, u in sorted(examples.items()))
    return (
        "<section class=signin><h2>Sign in with Microsoft Entra ID (OpenID Connect)</h2>"
        f"<p>Every <b>active</b> user below signs in with the password <code>{e(info['password'])}</code> "
        "(username: the user's e-mail). A deactivated user (Offboard, or a SCIM PATCH "
        "<code>active: false</code>) cannot sign in.</p>"
        f"<p><small>Discovery: <code>{e(info['discovery'])}</code> &middot; client id "
        f"<code>{e(info['client_id'])}</code>, secret <code>{e(info['client_secret'])}</code> &middot; PKCE S256 "
        "required.</small></p>"
        f"<p>App roles come by cost center (others have none and the workbench refuses them):</p><ul>{rules}</ul>"
        + (f"<p>For example:</p><ul>{sample}</ul>" if sample else "")
        + "</section>"
    )


def render(
    users: list[dict],
    user_of: Callable[[str], dict | None],
    *,
    roles_of: Callable[[dict], dict] | None = None,
    sign_in: dict | None = None,
) -> str:
    """``users`` in display order; ``user_of(id)`` finds a manager's User; ``roles_of(user)`` its app
    role assignment; ``sign_in`` what the sign-in panel says."""
    e = escape
    roles_of = roles_of or (lambda u: {})
    rows = []
    for u in users:
        ext, boss = u.get(ENT, {}), (u.get(ENT, {}).get("manager") or {}).get("value", "")
        manager = (user_of(boss) or {}).get("displayName", "") if boss else ""
        assignment = roles_of(u)
        granted = ", ".join(assignment.get("roles") or [])
        if granted and assignment.get("entities"):
            granted += f" ({', '.join(assignment['entities'])})"
        action = ""
        if u.get("active") and ext.get("employeeNumber"):
            action = (
                '<form method=post action="/sandbox/deactivate"><input type=hidden name=employee_number '
                f'value="{e(ext["employeeNumber"])}"><button>Offboard</button></form>'
            )
        rows.append(
            f"<tr><td>{e(u.get('displayName', ''))}<br><small>{e(u['userName'])}</small></td>"
            f"<td>{e(ext.get('employeeNumber', ''))}</td><td>{e(ext.get('organization', ''))}</td>"
            f"<td>{e(ext.get('costCenter', ''))}</td><td>{e(manager)}</td><td><small>{e(granted)}</small></td>"
            f"<td>{'active' if u.get('active') else '<b>inactive</b>'}</td>"
            f"<td>{e(u['meta']['lastModified'])}</td><td>{action}</td></tr>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>SCIM sandbox</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}"
        "small{color:#5b6b7b}form{margin:0}.signin{background:#f4f7fb;padding:.2rem 1rem;margin-bottom:1rem}"
        "h2{font-size:1.1rem}</style></head><body>"
        "<h1>SCIM sandbox &mdash; directory users</h1>"
        + (_sign_in_panel(sign_in, users, roles_of) if sign_in else "")
        + f"<p><small>{len(users)} users, {sum(1 for u in users if u.get('active'))} active.</small></p>"
        "<table><thead><tr><th>User</th><th>Employee no.</th><th>Organization</th><th>Cost center</th>"
        "<th>Manager</th><th>App roles</th><th>Status</th><th>Last modified</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
