"""Coupa-shaped documents: the seeded procurement data and the fragments every document is built from.

Everything here writes Coupa's JSON itself (dash-case keys, nested reference objects, amounts as
decimal strings, see the server's docstring for where the shapes come from); it never borrows the
connector's mapping, so the sandbox cannot agree with a mapping bug.

``seed_documents`` turns ``build_p2p`` (the same world and seed as the other sandboxes) into the
collections the server stores, plus the clock and id counters to continue from. The fragment
builders (``po_from``, ``receipt_doc``, ``invoice_line``, ``invoice_doc``...) also serve the server's
writes, so a document created through the API looks like a seeded one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from connectors.sandboxkit.procurement import CATEGORIES, build_p2p, suppliers_by_number
from connectors.sandboxkit.world import ENTITIES, build_world

COLLECTIONS = (
    "users",
    "suppliers",
    "commodities",
    "contracts",
    "requisitions",
    "purchase_orders",
    "receiving_transactions",
    "invoices",
)
TAX_RATES = {
    "TAXABLE": Decimal("8"),
    "EXEMPT": Decimal("0"),
    "VAT19": Decimal("19"),
    "VAT7": Decimal("7"),
    "VAT0": Decimal("0"),
    "TVA20": Decimal("20"),
    "TVA10": Decimal("10"),
    "TVA55": Decimal("5.5"),
}
CENT = Decimal("0.01")
ENTITY_IDS = {e[0]: i for i, e in enumerate(ENTITIES, start=1)}  # one chart of accounts per legal entity


def today_of(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)) if value else date.today()


def stamp(d: date, seq: int = 0, hour: int = 8) -> str:
    """A seed timestamp: distinct per object (seq seconds apart), Coupa's ISO form with an offset."""
    return (datetime.combine(d, time(hour), UTC) + timedelta(seconds=seq)).isoformat()


def parse_ts(value: str) -> datetime:
    """A Coupa timestamp (``2026-11-05T08:00:00+00:00``, or with ``Z``); a naive one is UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stamp_lines(doc: dict, at: str) -> None:
    for key in ("requisition-lines", "order-lines", "invoice-lines"):
        for ln in doc.get(key) or []:
            if not ln.get("created-at"):
                ln["created-at"] = ln["updated-at"] = at


# --- vendor-shaped fragments -----------------------------------------------------------------------


def commodity(commodities: dict, code: str) -> dict:
    return next(c for c in commodities.values() if c["code"] == code)


def currency(code: str) -> dict:
    return {"id": {"USD": 1, "EUR": 2}.get(code, 99), "code": code, "decimals": 2}


def user_ref(u: dict) -> dict:
    return {k: u[k] for k in ("id", "login", "email", "employee-number", "firstname", "lastname")}


def supplier_ref(s: dict) -> dict:
    return {k: s[k] for k in ("id", "name", "display-name", "number", "company-code", "tax-id")}


def commodity_ref(c: dict) -> dict:
    return {k: c[k] for k in ("id", "name", "active", "code")}


def account(gl: str, cc: str, project: str, entity: str) -> dict:
    code = "-".join(p for p in (gl, cc, project) if p)
    return {
        "name": code,
        "code": code,
        "active": True,
        "segment-1": gl,
        "segment-2": cc,
        "segment-3": project or None,
        "account-type": {"id": ENTITY_IDS.get(entity, 99), "name": entity},
    }


def po_from(req: dict, po_id: int, next_line_id) -> dict:
    lines = req["requisition-lines"]
    return {
        "id": po_id,
        "created-at": None,
        "updated-at": None,
        "po-number": req["erp-po-number"],
        "status": "issued",
        "version": 1,
        "exported": False,
        "currency": req["currency"],
        "total": req["total"],
        "supplier": lines[0]["supplier"],
        "requisition-header": {"id": req["id"]},
        "account-type": lines[0]["account"]["account-type"],
        "ship-to-user": req["requested-by"],
        "order-lines": [
            {
                "id": next_line_id(),
                "line-num": ln["line-num"],
                "description": ln["description"],
                "quantity": ln["quantity"],
                "price": ln["unit-price"],
                "total": ln["total"],
                "uom": ln["uom"],
                "account": ln["account"],
                "commodity": ln["commodity"],
                "need-by-date": ln["need-by-date"],
                "requisition-line": {"id": ln["id"]},
            }
            for ln in lines
        ],
    }


def receipt_doc(rid: int, ol: dict, po: dict, quantity: Decimal, when: str) -> dict:
    return {
        "id": rid,
        "created-at": None,
        "updated-at": None,
        "type": "ReceivingQuantityConsumption",
        "status": "created",
        "quantity": str(quantity),
        "transaction-date": when,
        "exported": False,
        "order-line": {
            "id": ol["id"],
            "line-num": ol["line-num"],
            "po-number": po["po-number"],
            "order-header-id": po["id"],
        },
        "account": ol["account"],
        "uom": ol["uom"],
    }


def invoice_line(
    lid: int,
    line_no: int,
    description: str,
    qty: Decimal,
    price: Decimal,
    tax_code: str,
    ol: dict | None,
    po: dict | None,
    entity: str,
) -> dict:
    total = (qty * price).quantize(CENT)
    rate = TAX_RATES.get(tax_code, Decimal("0"))
    return {
        "id": lid,
        "line-num": line_no,
        "description": description,
        "quantity": str(qty),
        "price": str(price),
        "total": str(total),
        "uom": ol["uom"] if ol else {"id": 1, "code": "EA", "name": "Each"},
        "tax-code": {"code": tax_code},
        "tax-rate": str(rate),
        "tax-amount": str((total * rate / 100).quantize(CENT)),
        "order-line-id": ol["id"] if ol else None,
        "po-number": po["po-number"] if po else None,
        "order-line-num": ol["line-num"] if ol else None,
        "account": ol["account"] if ol else account("", "", "", entity),
    }


def invoice_doc(
    iid: int,
    number: str,
    inv_date: date,
    sup: dict,
    currency_code: str,
    entity: str,
    buyer: str,
    iban: str,
    lines: list[dict],
) -> dict:
    net = sum((Decimal(ln["total"]) for ln in lines), Decimal("0"))
    tax = sum((Decimal(ln["tax-amount"]) for ln in lines), Decimal("0"))
    return {
        "id": iid,
        "created-at": None,
        "updated-at": None,
        "invoice-number": number,
        "invoice-date": stamp(inv_date, 0, 0),
        "document-type": "Invoice",
        "status": "pending_approval",
        "exported": False,
        "currency": currency(currency_code),
        "supplier": supplier_ref(sup),
        "account-type": account("", "", "", entity)["account-type"],
        "bill-to-address": {"name": buyer, "vat-number": None},
        "remit-to-address": {"name": sup["name"], "bank-account": {"iban": iban}},
        # Every third invoice offers 2 % for payment within 10 days (Coupa's "2/10 net 30").
        "payment-term": (
            {"code": "2/10 NET30", "days-for-net-payment": 30, "discount-rate": "2.0", "days-for-discount-payment": 10}
            if iid % 3 == 0
            else {"code": "NET30", "days-for-net-payment": 30, "discount-rate": None, "days-for-discount-payment": None}
        ),
        "net-due-date": stamp(inv_date + timedelta(days=30), 0, 0),
        "line-level-taxation": True,
        "tax-amount": str(tax),
        "gross-total": str(net + tax),
        "erp-document-number": "",
        "erp-status": "",
        "payment-status": "",
        "erp-comment": "",
        "invoice-lines": lines,
    }


# --- the seed --------------------------------------------------------------------------------------


def seed_documents(
    *, seed: int, today: date, n_employees: int, n_requisitions: int, coupa_only_suppliers: bool = False
) -> tuple[dict[str, dict[str, dict]], dict]:
    """The stored collections (id -> document, in ``COLLECTIONS`` order) and the meta state
    (``{"clock", "ids"}``) that new writes continue from."""
    world = build_world(seed=seed, today=today, n_employees=n_employees, n_lines=0)
    p2p = build_p2p(world, seed=seed, n_requisitions=n_requisitions)
    ids = {}
    display = {e[0]: e[1] for e in ENTITIES}

    users = {}
    for i, emp in enumerate(world.employees):
        uid = p2p.users[emp.code]
        users[str(uid)] = {
            "id": uid,
            "created-at": stamp(today - timedelta(days=700), i),
            "updated-at": stamp(today - timedelta(days=300), i),
            "login": emp.email.split("@")[0],
            "email": emp.email,
            "employee-number": emp.code,
            "firstname": emp.first,
            "lastname": emp.last,
            "fullname": emp.name,
            "active": emp.status == "Active",
            "purchasing-user": True,
            "legal-entity": emp.entity,
            "cost-center": emp.cost_center,
        }
    commodities = {}
    for i, (code, name, gl, needs_contract, _prices, _uom) in enumerate(CATEGORIES, start=1):
        commodities[str(i)] = {
            "id": i,
            "created-at": stamp(today - timedelta(days=900), i),
            "updated-at": stamp(today - timedelta(days=200), i),
            "name": name,
            "active": True,
            "code": code,
            "gl-account": gl,
            "contract-required": needs_contract,
        }
    suppliers, contracts = {}, {}
    for i, s in enumerate(p2p.suppliers):
        suppliers[str(s.coupa_id)] = {
            "id": s.coupa_id,
            "created-at": stamp(today - timedelta(days=800), i),
            "updated-at": stamp(today - timedelta(days=100), i),
            "name": s.name,
            "display-name": s.name,
            "number": s.number,
            "status": "active",
            "tax-id": s.tax_id,
            "company-code": s.entity,
            "invoice-matching-level": "3-way",
            "po-method": "prompt",
            "primary-address": {"country": {"code": s.country}},
            "remit-to-iban": s.iban,
        }
        for number, cat, start, end in s.contracts:
            cid = 300 + len(contracts) + 1
            contracts[str(cid)] = {
                "id": cid,
                "created-at": stamp(start, cid),
                "updated-at": stamp(start, cid, hour=9),
                "number": number,
                "name": f"{s.name} - {cat}",
                "status": "published" if start <= today <= end else "expired",
                "start-date": stamp(start, 0, 0),
                "end-date": stamp(end, 0, 0),
                "supplier": supplier_ref(suppliers[str(s.coupa_id)]),
                "commodity": commodity_ref(commodity(commodities, cat)),
                "currency": {"id": 1, "code": s.currency, "decimals": 2},
            }
    if coupa_only_suppliers:
        suppliers.update(_coupa_only_suppliers(p2p.suppliers, today))

    by_number = {s["number"]: s for s in suppliers.values()}
    line_id = 200000
    reqs, pos, receipts, invoices = {}, {}, {}, {}
    for i, r in enumerate(p2p.requisitions):
        created = stamp(r.submitted, i)
        lines = []
        for ln in r.lines:
            line_id += 1
            lines.append(
                {
                    "id": line_id,
                    "created-at": created,
                    "updated-at": created,
                    "line-num": ln.line_no,
                    "description": ln.description,
                    "need-by-date": stamp(ln.need_by, 0, 0),
                    "quantity": str(ln.quantity),
                    "unit-price": str(ln.unit_price),
                    "total": str(ln.amount),
                    "source-type": "Non-Catalog Request",
                    "line-type": "RequisitionQuantityLine",
                    "order-line-id": None,
                    "account": account(ln.gl_account, ln.cost_center, "", r.entity),
                    "commodity": commodity_ref(commodity(commodities, ln.category)),
                    "currency": currency(r.currency),
                    "supplier": supplier_ref(by_number[ln.supplier]),
                    "uom": {
                        "id": 1 if ln.uom == "EA" else 2,
                        "code": ln.uom,
                        "name": "Each" if ln.uom == "EA" else "Hour",
                    },
                }
            )
        requester = users[str(p2p.users[r.requester])]
        reqs[str(r.coupa_id)] = {
            "id": r.coupa_id,
            "created-at": created,
            "updated-at": stamp(r.submitted, i, hour=9),
            "status": r.status,
            "submitted-at": stamp(r.submitted, i, hour=9),
            "exported": False,
            "need-by-date": lines[0]["need-by-date"],
            "justification": "",
            "reject-reason-comment": None,
            "total": str(r.total),
            "currency": currency(r.currency),
            "requested-by": user_ref(requester),
            "requisition-description": r.title,
            "legal-entity": r.entity,
            "erp-po-number": r.po_number,
            "erp-commitment": "",
            "validation-status": "",
            "validation-messages": "",
            "requisition-lines": lines,
        }
    # POs of the ordered requisitions (two days after submission, still before today: build_p2p
    # submits ordered requisitions four days back at the latest), with their order lines.
    for k, req in enumerate(d for d in reqs.values() if d["status"] == "ordered"):
        po = po_from(req, 5000 + k + 1, lambda: 0)
        at = stamp(date.fromisoformat(req["submitted-at"][:10]) + timedelta(days=2), k)
        po["created-at"] = po["updated-at"] = at
        for ol in po["order-lines"]:
            line_id += 1
            ol["id"] = line_id
        stamp_lines(po, at)
        for rl, ol in zip(req["requisition-lines"], po["order-lines"], strict=True):
            rl["order-line-id"] = ol["id"]
        pos[str(po["id"])] = po
    po_by_number = {po["po-number"]: po for po in pos.values()}
    rec_id = 9000
    for k, rec in enumerate(p2p.receipts):
        po = po_by_number[rec.po_number]
        for rl in rec.lines:
            rec_id += 1
            ol = next(o for o in po["order-lines"] if o["line-num"] == rl.po_line_no)
            receipts[str(rec_id)] = receipt_doc(rec_id, ol, po, rl.quantity, stamp(rec.received, 0, 12))
            receipts[str(rec_id)]["created-at"] = receipts[str(rec_id)]["updated-at"] = stamp(rec.received, k)
    sups = suppliers_by_number(p2p.suppliers)
    for k, inv in enumerate(p2p.invoices):
        po = po_by_number.get(inv.po_number)
        sup = by_number[inv.supplier]
        lines = []
        for ln in inv.lines:
            line_id += 1
            ol = next((o for o in po["order-lines"] if o["line-num"] == ln.po_line_no), None) if po else None
            lines.append(
                invoice_line(
                    line_id, ln.line_no, ln.description, ln.quantity, ln.unit_price, ln.tax_code, ol, po, inv.entity
                )
            )
        doc = invoice_doc(
            inv.coupa_id,
            inv.number,
            inv.invoice_date,
            sup,
            inv.currency,
            inv.entity,
            display[inv.entity],
            sups[inv.supplier].iban,
            lines,
        )
        doc["created-at"] = doc["updated-at"] = stamp(inv.invoice_date, k, hour=10)
        stamp_lines(doc, doc["created-at"])
        invoices[str(inv.coupa_id)] = doc
    collections = {
        "users": users,
        "suppliers": suppliers,
        "commodities": commodities,
        "contracts": contracts,
        "requisitions": reqs,
        "purchase_orders": pos,
        "receiving_transactions": receipts,
        "invoices": invoices,
    }
    ids.update(
        {
            "requisitions": max(map(int, reqs)),
            "purchase_orders": max(map(int, pos), default=5000),
            "receiving_transactions": rec_id,
            "invoices": max(map(int, invoices), default=7000),
            "lines": line_id,
        }
    )
    latest = max(d["updated-at"] for docs in collections.values() for d in docs.values())
    return collections, {"clock": latest, "ids": ids}


def _coupa_only_suppliers(erp_suppliers: list, today: date) -> dict[str, dict]:
    """Suppliers typed into Coupa by hand (option ``coupa_only_suppliers``), one per crosswalk outcome.

    Not the ERP's vendor numbers: the workbench has to find the vendor by tax id or name. In order:
    the same VAT id typed with spaces in lower case (certain); the same name with "ae" for "ä" and
    no legal form, no tax id (likely: waits for a person); the same name with another legal form
    in another country (uncertain); nobody the ERP knows (unmatched). Stamped after every seeded
    supplier, with ids of their own.
    """
    by_name = {s.name: s for s in erp_suppliers}
    litware, adatum, kontoso = (
        by_name["Litware Software GmbH"],
        by_name["Adatum Gebäudeservice GmbH"],
        by_name["Kontoso Technik GmbH"],
    )
    spaced = (
        litware.tax_id[:2].lower() + " " + " ".join(litware.tax_id[i : i + 3] for i in range(2, len(litware.tax_id), 3))
    )
    planted = [  # (id, name, number, tax id, country, entity, IBAN)
        (4901, "Litware Software Deutschland GmbH", "", spaced, "DE", litware.entity, litware.iban),
        (4902, "Adatum Gebaeudeservice", "C-90002", "", "DE", adatum.entity, ""),
        (4903, "Kontoso Technik AG", "C-90003", "", "AT", kontoso.entity, ""),
        (4904, "Globex Industrial Supplies Inc.", "C-90004", "98-7654321", "US", "NW-US", ""),
    ]
    out = {}
    for k, (sid, name, number, tax_id, country, entity, iban) in enumerate(planted):
        out[str(sid)] = {
            "id": sid,
            "created-at": stamp(today - timedelta(days=120), k),
            "updated-at": stamp(today - timedelta(days=100), len(erp_suppliers) + k),
            "name": name,
            "display-name": name,
            "number": number,
            "status": "active",
            "tax-id": tax_id,
            "company-code": entity,
            "invoice-matching-level": "3-way",
            "po-method": "prompt",
            "primary-address": {"country": {"code": country}},
            "remit-to-iban": iban,
        }
    return out
