"""The Coupa sandbox's HTML console (``GET /``): the latest requisitions, purchase orders and invoices,
and where the Call Out goes. Every value goes through ``html.escape``: titles and descriptions are
user input, and the tests plant hostile strings in them."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from .rules import as_text


def render(all_of: Callable[[str], list[dict]], callout_url: str) -> str:
    """``all_of(collection)`` lists a collection's stored documents."""
    e = html.escape

    def recent(coll: str, n: int = 25) -> list[dict]:
        return sorted(all_of(coll), key=lambda d: (d["updated-at"], d["id"]), reverse=True)[:n]

    def table(head: list[str], rows: list[list[Any]]) -> str:
        cells = "".join(f"<tr>{''.join(f'<td>{e(as_text(c))}</td>' for c in row)}</tr>" for row in rows)
        return f"<table><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>{cells}</table>"

    reqs = table(
        ["id", "title", "requester", "status", "validation", "messages", "PO", "total", "updated"],
        [
            [
                r["id"],
                r["requisition-description"],
                r["requested-by"]["employee-number"],
                r["status"],
                r["validation-status"],
                r["validation-messages"],
                r["erp-po-number"],
                f"{r['total']} {r['currency']['code']}",
                r["updated-at"],
            ]
            for r in recent("requisitions")
        ],
    )
    pos = table(
        ["id", "PO number", "supplier", "status", "total", "created"],
        [
            [
                p["id"],
                p["po-number"],
                p["supplier"]["name"],
                p["status"],
                f"{p['total']} {p['currency']['code']}",
                p["created-at"],
            ]
            for p in recent("purchase_orders")
        ],
    )
    invs = table(
        ["id", "number", "supplier", "status", "total", "exported", "ERP doc", "payment"],
        [
            [
                i["id"],
                i["invoice-number"],
                i["supplier"]["name"],
                i["status"],
                f"{i['gross-total']} {i['currency']['code']}",
                i["exported"],
                i["erp-document-number"],
                i["payment-status"],
            ]
            for i in recent("invoices")
        ],
    )
    callout = e(callout_url or "not configured")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Coupa sandbox</title>"
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;white-space:pre-line}</style></head>"
        f"<body><h1>Coupa sandbox</h1><p>Call out: {callout}</p>"
        f"<h2>Requisitions</h2>{reqs}<h2>Purchase orders</h2>{pos}<h2>Invoices</h2>{invs}</body></html>"
    )
