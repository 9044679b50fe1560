"""The sandbox's HTML console (``GET /``): what a person would check in Concur's UI.

Every value goes through ``html.escape``: report names and line descriptions are user input and
the demo plants hostile strings such as ``<script>`` in them.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

STATUSES = ("READY", "ACKNOWLEDGED", "POSTED", "FAILED")

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#1d2733}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f6f9}.READY{color:#0b63b6}.ACKNOWLEDGED{color:#7a5b00}.POSTED{color:#16794c}.FAILED{color:#b3261e}
.num{text-align:right;font-variant-numeric:tabular-nums}small{color:#5b6b7b}nav a{margin-right:.8rem}
"""


def render(
    counts: dict[str, int],
    rows: Iterable[tuple[str, dict[str, Any], dict[str, Any]]],
    *,
    status: str,
    page: int,
    has_more: bool,
    page_size: int,
) -> str:
    """``rows``: (docId, report summary, state) for the page being shown."""
    e = escape
    nav = f'<a href="/?status=ALL">All ({sum(counts.values())})</a> ' + " ".join(
        f'<a href="/?status={s}">{s.title()} ({counts.get(s, 0)})</a>' for s in STATUSES
    )
    body = []
    for doc_id, summ, state in rows:
        st = state.get("status", "READY")
        msgs = "<br>".join(e(str(m.get("text", ""))) for m in state.get("messages", []))
        payment = state.get("paymentStatusCode", "")
        descriptions = "<br>".join(e(str(d)) for d in summ.get("descriptions", []))
        body.append(
            "<tr>"
            f"<td><code>{e(doc_id)}</code><br><small>{e(str(summ.get('reportId', '')))}</small></td>"
            f"<td>{e(str(summ.get('reportNumber', '')))}</td>"
            f"<td>{e(str(summ.get('name', '')))}<br><small>{descriptions}</small></td>"
            f"<td>{e(str(summ.get('employee', '')))}<br><small>{e(str(summ.get('employeeId', '')))}</small></td>"
            f"<td>{e(str(summ.get('entity', '')))}</td>"
            f"<td class=num>{e(str(summ.get('total', '')))} {e(str(summ.get('currency', '')))}</td>"
            f"<td class={e(st)}>{e(st)}</td>"
            f"<td>{e(str(state.get('erpDocumentNumber') or ''))}</td>"
            f"<td>{e(str(payment))}</td>"
            f"<td>{msgs}</td>"
            "</tr>"
        )
    pager = []
    if page > 0:
        pager.append(f'<a href="/?status={e(status)}&amp;page={page - 1}">&larr; previous</a>')
    if has_more:
        pager.append(f'<a href="/?status={e(status)}&amp;page={page + 1}">next &rarr;</a>')
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Concur FIS sandbox</title><style>{_STYLE}</style></head><body>"
        "<h1>SAP Concur sandbox &mdash; Financial Integration Service</h1>"
        f"<p><small>{sum(counts.values())} expense documents. Showing {e(status.title())}, "
        f"page {page + 1} ({page_size} per page).</small></p>"
        f"<nav>{nav}</nav>"
        "<table><thead><tr><th>FIS doc / report id</th><th>Number</th><th>Report / lines</th><th>Employee</th>"
        "<th>Ledger</th><th class=num>Total</th><th>Status</th><th>ERP document</th><th>Payment</th>"
        "<th>Messages</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"
        f"<p>{' '.join(pager)}</p></body></html>"
    )
