"""The sandbox's HTML console (``GET /``): every approval, newest change first, with Approve/Reject
buttons on requested ones, so a person can act as the approver (``POST /sandbox/decide/{sys_id}``).
Every value goes through ``html.escape``: descriptions and comments are user input."""

from __future__ import annotations

from collections.abc import Callable
from html import escape


def render(rows: list[dict], user_of: Callable[[str], dict], setting: dict) -> str:
    """``rows``: the approvals in display order; ``user_of(sys_id)``: the approver's sys_user row
    (or {}); ``setting``: the autodecide setting."""
    e = escape
    body = []
    for r in rows:
        user = user_of(r["approver"])
        actions = ""
        if r["state"] == "requested":
            actions = "".join(
                f'<form method=post action="/sandbox/decide/{e(r["sys_id"])}" style="display:inline">'
                f'<input type=hidden name=state value={s}><input name=comments placeholder="comment" size=14>'
                f"<button>{label}</button></form> "
                for s, label in (("approved", "Approve"), ("rejected", "Reject"))
            )
        body.append(
            f"<tr><td>{e(user.get('name', ''))}<br><small>{e(user.get('employee_number', ''))}</small></td>"
            f"<td>{e(r['u_document_number'])}<br><small>{e(r['short_description'])}</small></td>"
            f"<td class=num>{e(r['u_amount'])} {e(r['u_currency'])}</td><td>{e(r['state'])}</td>"
            f"<td>{e(r['due_date'][:10])}</td><td>{e(r['comments'])}</td><td>{e(r['sys_updated_on'])}</td>"
            f"<td>{actions}</td></tr>"
        )
    auto = (
        "off"
        if setting.get("after_seconds") is None
        else f"after {setting['after_seconds']:g} s, rejecting over {setting.get('reject_over') or 'no limit'}"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>ServiceNow sandbox</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}"
        ".num{text-align:right}small{color:#5b6b7b}</style></head><body>"
        "<h1>ServiceNow sandbox &mdash; approvals</h1>"
        f"<p><small>{len(rows)} approvals. Autodecide: {e(auto)}.</small></p>"
        "<table><thead><tr><th>Approver</th><th>Document</th><th class=num>Amount</th><th>State</th>"
        "<th>Due</th><th>Comments</th><th>Updated</th><th></th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></body></html>"
    )
