"""A sandbox of the Coupa REST API (procurement: requisitions, POs, receipts, invoices).

Shape sources:
- **From the captured fixtures** (``shared/reference/coupa/api-fixtures``): dash-case keys, integer
  ids, ``created-at``/``updated-at`` on every object, nested objects (``currency: {"id", "code",
  "decimals"}``, ``requested-by`` user objects with ``login``/``email``/``employee-number``/
  ``firstname``/``lastname``, ``requisition-lines`` with ``account`` (``segment-1..20``, ``account-type``),
  ``commodity``, ``supplier`` (``number``, ``company-code``), ``uom``), amounts and quantities as
  decimal strings (``"43840.00"``, ``"1.0"``), ``exported`` flags, custom fields as top-level keys
  (``requisition-description``), error bodies ``{"error": "..."}``.
- **From Coupa's public REST API documentation**: resource paths (``/api/requisitions``,
  ``/api/purchase_orders``, ``/api/receiving_transactions``, ``/api/invoices``, ``/api/suppliers``,
  ``/api/commodities``, ``/api/contracts``, ``/api/users``); ``offset``/``limit`` paging (max 50);
  query filters on any field, nested ones as ``supplier[number]=...`` and operators as
  ``updated-at[gt]=...``; ``order_by``/``dir``; the ``X-COUPA-API-KEY`` header or OAuth 2.0
  client-credentials bearer tokens; ``PUT .../submit_for_approval`` and
  ``POST /api/requisitions/submit_for_approval`` (create and submit); ``exported=false`` queues set
  to ``true`` after hand-off; validation errors as ``{"errors": {"<resource>": ["..."]}}`` (422);
  Call Outs (a requisition is POSTed to an external URL when it is submitted for approval).
- **Sandbox choices** (not Coupa behaviour, or details the docs do not fix): our chart of accounts
  puts the GL account in ``segment-1``, the cost center in ``segment-2`` and the project in
  ``segment-3``, and ``account-type.name`` is the legal entity; custom fields ``legal-entity``,
  ``erp-po-number``, ``erp-commitment``, ``validation-status``, ``validation-messages`` (requisitions),
  ``code``/``gl-account``/``contract-required`` (commodities), ``erp-document-number``/``erp-status``/
  ``payment-status``/``erp-comment`` (invoices); a requisition status ``rejected`` (Coupa sends
  rejected ones back to draft); setting a requisition to ``ordered`` with an ``erp-po-number`` creates
  the Coupa PO under that number, at most once per number (an ERP-numbered "external PO"); the
  invoice's IBAN is at ``remit-to-address.bank-account.iban`` (suppliers keep it as ``remit-to-iban``); ``updated-at`` comes from a clock that
  never repeats or goes back (so ``updated-at[gt]`` never hides a change), in UTC (``+00:00``).

Option ``coupa_only_suppliers=True`` adds four suppliers that exist only in Coupa, one per outcome of the
workbench's supplier crosswalk (``_coupa_only_suppliers``). Off by default: the seeded supplier list is what
the ERP has.

Control (no auth): ``POST /sandbox/callout {"url", "token", "timeout"}`` (``{"url": ""}`` turns it off),
``GET /sandbox/stats`` (``purchase_orders_by_number`` shows a PO created twice), ``GET /`` (console).
"""

from __future__ import annotations

import copy
import hmac
import html
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.coupa import mapping
from connectors.sandboxkit.kit import HttpError, Request, Sandbox
from connectors.sandboxkit.procurement import CATEGORIES, build_p2p, suppliers_by_number
from connectors.sandboxkit.world import ENTITIES, build_world

COLLECTIONS = ("users", "suppliers", "commodities", "contracts", "requisitions", "purchase_orders",
               "receiving_transactions", "invoices")
SINGULAR = {"users": "user", "suppliers": "supplier", "commodities": "commodity", "contracts": "contract",
            "requisitions": "requisition", "purchase_orders": "order-header",
            "receiving_transactions": "receiving-transaction", "invoices": "invoice"}
MAX_LIMIT = 50
TAX_RATES = {"TAXABLE": Decimal("8"), "EXEMPT": Decimal("0"), "VAT19": Decimal("19"), "VAT7": Decimal("7"),
             "VAT0": Decimal("0"), "TVA20": Decimal("20"), "TVA10": Decimal("10"), "TVA55": Decimal("5.5")}
REQ_STATUSES = {"draft", "pending_approval", "approved", "rejected", "ordered", "withdrawn"}
# target status -> statuses it may come from (pending_approval only through submit_for_approval)
REQ_TRANSITIONS = {"approved": {"pending_approval"}, "rejected": {"pending_approval"},
                   "ordered": {"approved", "pending_approval"}, "draft": {"pending_approval", "rejected"},
                   "withdrawn": {"draft", "pending_approval", "approved"}}
REQ_FIELDS = {"status", "exported", "erp-po-number", "erp-commitment", "validation-status", "validation-messages",
              "reject-reason-comment", "requisition-description", "justification"}
INVOICE_STATUSES = {"draft", "pending_approval", "approved", "disputed", "voided"}
INVOICE_FIELDS = {"status", "exported", "erp-document-number", "erp-status", "payment-status", "erp-comment"}
SUPPLIER_FIELDS = {"name", "display-name", "tax-id", "status", "remit-to-iban"}  # what a buyer edits in Coupa
PAYMENT_STATUSES = {"", "ready_for_payment", "paid"}
CENT = Decimal("0.01")
ENTITY_IDS = {e[0]: i for i, e in enumerate(ENTITIES, start=1)}  # one chart of accounts per legal entity


def _today(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)) if value else date.today()


def stamp(d: date, seq: int = 0, hour: int = 8) -> str:
    """A seed timestamp: distinct per object (seq seconds apart), Coupa's ISO form with an offset."""
    return (datetime.combine(d, time(hour), UTC) + timedelta(seconds=seq)).isoformat()


def stamp_lines(doc: dict, at: str) -> None:
    for key in ("requisition-lines", "order-lines", "invoice-lines"):
        for ln in doc.get(key) or []:
            if not ln.get("created-at"):
                ln["created-at"] = ln["updated-at"] = at


def errors(resource: str, *messages: str) -> dict:
    return {"errors": {resource: list(messages)}}


def dec(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidOperation
    d = Decimal(str(value))
    if not d.is_finite():
        raise InvalidOperation
    return d


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class CoupaSandbox(Sandbox):
    name = "coupa"
    token_path = "/oauth2/token"

    def __init__(self, *, data_path: str | None = None, seed: int = 42, faults: dict | None = None, **options: Any):
        self.lock = threading.RLock()
        self.callout: dict[str, Any] = {}
        self.callout_log: list[dict] = []  # the last answers, for the console
        super().__init__(data_path=data_path, seed=seed, faults=faults, **options)

    @property
    def today(self) -> date:
        return _today(self.options.get("today"))

    # --- routes ------------------------------------------------------------------------------
    def setup(self) -> None:
        for coll in COLLECTIONS:
            self.route("GET", rf"/api/{coll}", lambda r, c=coll: self._list(c, r))
            self.route("GET", rf"/api/{coll}/(?P<id>\d+)", lambda r, c=coll: self._get_or_404(c, r.match["id"]))
        self.route("POST", r"/api/requisitions", self._create_requisition)
        self.route("POST", r"/api/requisitions/submit_for_approval", self._create_and_submit)
        self.route("PUT", r"/api/requisitions/(?P<id>\d+)/submit_for_approval", self._submit)
        self.route("PUT", r"/api/requisitions/(?P<id>\d+)", self._update_requisition)
        self.route("PUT", r"/api/invoices/(?P<id>\d+)", self._update_invoice)
        self.route("PUT", r"/api/suppliers/(?P<id>\d+)", self._update_supplier)
        self.route("POST", r"/api/invoices", self._create_invoice)
        self.route("PUT", r"/api/receiving_transactions/(?P<id>\d+)", self._update_receipt)
        self.route("POST", r"/api/receiving_transactions", self._create_receipt)
        self.route("POST", r"/sandbox/callout", self._set_callout, auth=False)
        self.route("GET", r"/", self._console, auth=False)

    def make_handler(self):
        base = super().make_handler()

        class _Handler(base):  # the kit has no PUT; Coupa updates with PUT
            def do_PUT(self):
                self._serve("PUT")

        return _Handler

    def error_body(self, status: int, code: str, message: str) -> Any:
        return errors("base", message)

    def check_auth(self, req: Request) -> None:
        key = req.headers.get("X-COUPA-API-KEY") or ""
        if key and hmac.compare_digest(key.encode(), self.client_secret.encode()):
            return
        super().check_auth(req)

    # --- clock, ids, store helpers --------------------------------------------------------------
    def _meta(self) -> dict:
        return copy.deepcopy(self.store.get("meta", "state") or {"clock": stamp(self.today), "ids": {}})

    def _tick(self) -> str:
        """Now, but strictly after every earlier stamp: a change is never hidden by ``[gt]``."""
        with self.lock:
            meta = self._meta()
            now = datetime.now(UTC).replace(microsecond=0)
            t = max(now, datetime.fromisoformat(meta["clock"]) + timedelta(seconds=1))
            meta["clock"] = t.isoformat()
            self.store.put("meta", "state", meta)
            return meta["clock"]

    def _new_id(self, kind: str) -> int:
        with self.lock:
            meta = self._meta()
            meta["ids"][kind] = meta["ids"].get(kind, 0) + 1
            self.store.put("meta", "state", meta)
            return meta["ids"][kind]

    def _get_or_404(self, coll: str, oid: Any) -> dict:
        doc = self.store.get(coll, str(oid))
        if doc is None:
            raise HttpError(404, errors(SINGULAR[coll], f"Could not find {SINGULAR[coll]} with id {oid}."))
        return doc

    def _save(self, coll: str, doc: dict, *, created: bool = False) -> dict:
        """Stamp and store a (copied) document; stored dicts are never changed in place after this."""
        now = self._tick()
        doc["updated-at"] = now
        if created:
            doc["created-at"] = now
            stamp_lines(doc, now)
        return self.store.put(coll, str(doc["id"]), doc)

    def update(self, coll: str, oid: Any, changes: dict) -> dict:
        """Change an object as a Coupa user would (tests and the console use it)."""
        with self.lock:
            doc = copy.deepcopy(self._get_or_404(coll, oid))
            doc.update(changes)
            return self._save(coll, doc)

    def _body(self, req: Request, resource: str) -> dict:
        try:
            body = req.json()
        except HttpError:
            raise HttpError(400, errors(resource, "The request body is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise HttpError(400, errors(resource, "The request body must be a JSON object."))
        return body

    # --- seed ---------------------------------------------------------------------------------
    def seed_store(self) -> None:
        world = build_world(seed=self.seed, today=self.today, n_employees=int(self.options.get("n_employees") or 200),
                            n_lines=0)
        p2p = build_p2p(world, seed=self.seed, n_requisitions=int(self.options.get("n_requisitions") or 60))
        today, ids = self.today, {}
        display = {e[0]: e[1] for e in ENTITIES}

        users = {}
        for i, emp in enumerate(world.employees):
            uid = p2p.users[emp.code]
            users[str(uid)] = {
                "id": uid, "created-at": stamp(today - timedelta(days=700), i), "updated-at":
                stamp(today - timedelta(days=300), i), "login": emp.email.split("@")[0], "email": emp.email,
                "employee-number": emp.code, "firstname": emp.first, "lastname": emp.last, "fullname": emp.name,
                "active": emp.status == "Active", "purchasing-user": True, "legal-entity": emp.entity,
                "cost-center": emp.cost_center}
        commodities = {}
        for i, (code, name, gl, needs_contract, _prices, _uom) in enumerate(CATEGORIES, start=1):
            commodities[str(i)] = {"id": i, "created-at": stamp(today - timedelta(days=900), i),
                                   "updated-at": stamp(today - timedelta(days=200), i), "name": name, "active": True,
                                   "code": code, "gl-account": gl, "contract-required": needs_contract}
        suppliers, contracts = {}, {}
        for i, s in enumerate(p2p.suppliers):
            suppliers[str(s.coupa_id)] = {
                "id": s.coupa_id, "created-at": stamp(today - timedelta(days=800), i),
                "updated-at": stamp(today - timedelta(days=100), i), "name": s.name, "display-name": s.name,
                "number": s.number, "status": "active", "tax-id": s.tax_id, "company-code": s.entity,
                "invoice-matching-level": "3-way", "po-method": "prompt",
                "primary-address": {"country": {"code": s.country}}, "remit-to-iban": s.iban}
            for number, cat, start, end in s.contracts:
                cid = 300 + len(contracts) + 1
                contracts[str(cid)] = {
                    "id": cid, "created-at": stamp(start, cid), "updated-at": stamp(start, cid, hour=9),
                    "number": number, "name": f"{s.name} - {cat}",
                    "status": "published" if start <= today <= end else "expired",
                    "start-date": stamp(start, 0, 0), "end-date": stamp(end, 0, 0),
                    "supplier": self._supplier_ref(suppliers[str(s.coupa_id)]),
                    "commodity": self._commodity_ref(self._commodity(commodities, cat)),
                    "currency": {"id": 1, "code": s.currency, "decimals": 2}}
        if self.options.get("coupa_only_suppliers"):
            suppliers.update(self._coupa_only_suppliers(p2p.suppliers, today))
        self.store.put_many("users", users)
        self.store.put_many("commodities", commodities)
        self.store.put_many("suppliers", suppliers)
        self.store.put_many("contracts", contracts)

        by_number = {s["number"]: s for s in suppliers.values()}
        line_id = 200000
        reqs, pos, receipts, invoices = {}, {}, {}, {}
        for i, r in enumerate(p2p.requisitions):
            created = stamp(r.submitted, i)
            lines = []
            for ln in r.lines:
                line_id += 1
                lines.append({
                    "id": line_id, "created-at": created, "updated-at": created, "line-num": ln.line_no,
                    "description": ln.description, "need-by-date": stamp(ln.need_by, 0, 0),
                    "quantity": str(ln.quantity), "unit-price": str(ln.unit_price), "total": str(ln.amount),
                    "source-type": "Non-Catalog Request", "line-type": "RequisitionQuantityLine",
                    "order-line-id": None, "account": self._account(ln.gl_account, ln.cost_center, "", r.entity),
                    "commodity": self._commodity_ref(self._commodity(commodities, ln.category)),
                    "currency": self._currency(r.currency), "supplier": self._supplier_ref(by_number[ln.supplier]),
                    "uom": {"id": 1 if ln.uom == "EA" else 2, "code": ln.uom, "name": "Each" if ln.uom == "EA" else "Hour"}})
            requester = users[str(p2p.users[r.requester])]
            reqs[str(r.coupa_id)] = {
                "id": r.coupa_id, "created-at": created, "updated-at": stamp(r.submitted, i, hour=9),
                "status": r.status, "submitted-at": stamp(r.submitted, i, hour=9), "exported": False,
                "need-by-date": lines[0]["need-by-date"], "justification": "", "reject-reason-comment": None,
                "total": str(r.total), "currency": self._currency(r.currency), "requested-by": self._user_ref(requester),
                "requisition-description": r.title, "legal-entity": r.entity, "erp-po-number": r.po_number,
                "erp-commitment": "", "validation-status": "", "validation-messages": "",
                "requisition-lines": lines}
        # POs of the ordered requisitions (two days after submission), with their order lines.
        for k, req in enumerate(d for d in reqs.values() if d["status"] == "ordered"):
            po = self._po_from(req, 5000 + k + 1, lambda: 0)
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
                receipts[str(rec_id)] = self._receipt_doc(rec_id, ol, po, rl.quantity, stamp(rec.received, 0, 12))
                receipts[str(rec_id)]["created-at"] = receipts[str(rec_id)]["updated-at"] = stamp(rec.received, k)
        sups = suppliers_by_number(p2p.suppliers)
        for k, inv in enumerate(p2p.invoices):
            po = po_by_number.get(inv.po_number)
            sup = by_number[inv.supplier]
            lines = []
            for ln in inv.lines:
                line_id += 1
                ol = next((o for o in po["order-lines"] if o["line-num"] == ln.po_line_no), None) if po else None
                lines.append(self._invoice_line(line_id, ln.line_no, ln.description, ln.quantity, ln.unit_price,
                                                ln.tax_code, ol, po, inv.entity))
            doc = self._invoice_doc(inv.coupa_id, inv.number, inv.invoice_date, sup, inv.currency, inv.entity,
                                    display[inv.entity], sups[inv.supplier].iban, lines)
            doc["created-at"] = doc["updated-at"] = stamp(inv.invoice_date, k, hour=10)
            stamp_lines(doc, doc["created-at"])
            invoices[str(inv.coupa_id)] = doc
        self.store.put_many("requisitions", reqs)
        self.store.put_many("purchase_orders", pos)
        self.store.put_many("receiving_transactions", receipts)
        self.store.put_many("invoices", invoices)
        ids.update({"requisitions": max(map(int, reqs)), "purchase_orders": max(map(int, pos), default=5000),
                    "receiving_transactions": rec_id, "invoices": max(map(int, invoices), default=7000),
                    "lines": line_id})
        latest = max(d["updated-at"] for c in COLLECTIONS for d in self.store.all(c))
        self.store.put("meta", "state", {"clock": latest, "ids": ids})

    @staticmethod
    def _coupa_only_suppliers(erp_suppliers: list, today: date) -> dict[str, dict]:
        """Suppliers typed into Coupa by hand (option ``coupa_only_suppliers``), one per crosswalk outcome.

        Not the ERP's vendor numbers: the workbench has to find the vendor by tax id or name. In order:
        the same VAT id typed with spaces in lower case (certain); the same name with "ae" for "ä" and
        no legal form, no tax id (likely: waits for a person); the same name with another legal form
        in another country (uncertain); nobody the ERP knows (unmatched). Stamped after every seeded
        supplier, with ids of their own.
        """
        by_name = {s.name: s for s in erp_suppliers}
        litware, adatum, kontoso = (by_name["Litware Software GmbH"], by_name["Adatum Gebäudeservice GmbH"],
                                    by_name["Kontoso Technik GmbH"])
        spaced = litware.tax_id[:2].lower() + " " + " ".join(litware.tax_id[i:i + 3] for i in range(2, len(litware.tax_id), 3))
        planted = [  # (id, name, number, tax id, country, entity, IBAN)
            (4901, "Litware Software Deutschland GmbH", "", spaced, "DE", litware.entity, litware.iban),
            (4902, "Adatum Gebaeudeservice", "C-90002", "", "DE", adatum.entity, ""),
            (4903, "Kontoso Technik AG", "C-90003", "", "AT", kontoso.entity, ""),
            (4904, "Globex Industrial Supplies Inc.", "C-90004", "98-7654321", "US", "NW-US", ""),
        ]
        out = {}
        for k, (sid, name, number, tax_id, country, entity, iban) in enumerate(planted):
            out[str(sid)] = {
                "id": sid, "created-at": stamp(today - timedelta(days=120), k),
                "updated-at": stamp(today - timedelta(days=100), len(erp_suppliers) + k), "name": name,
                "display-name": name, "number": number, "status": "active", "tax-id": tax_id, "company-code": entity,
                "invoice-matching-level": "3-way", "po-method": "prompt",
                "primary-address": {"country": {"code": country}}, "remit-to-iban": iban}
        return out

    # --- vendor-shaped fragments ---------------------------------------------------------------
    @staticmethod
    def _commodity(commodities: dict, code: str) -> dict:
        return next(c for c in commodities.values() if c["code"] == code)

    @staticmethod
    def _currency(code: str) -> dict:
        return {"id": {"USD": 1, "EUR": 2}.get(code, 99), "code": code, "decimals": 2}

    @staticmethod
    def _user_ref(u: dict) -> dict:
        return {k: u[k] for k in ("id", "login", "email", "employee-number", "firstname", "lastname")}

    @staticmethod
    def _supplier_ref(s: dict) -> dict:
        return {k: s[k] for k in ("id", "name", "display-name", "number", "company-code", "tax-id")}

    @staticmethod
    def _commodity_ref(c: dict) -> dict:
        return {k: c[k] for k in ("id", "name", "active", "code")}

    @staticmethod
    def _account(gl: str, cc: str, project: str, entity: str) -> dict:
        code = "-".join(p for p in (gl, cc, project) if p)
        return {"name": code, "code": code, "active": True, "segment-1": gl, "segment-2": cc,
                "segment-3": project or None, "account-type": {"id": ENTITY_IDS.get(entity, 99), "name": entity}}

    def _po_from(self, req: dict, po_id: int, next_line_id) -> dict:
        lines = req["requisition-lines"]
        return {
            "id": po_id, "created-at": None, "updated-at": None, "po-number": req["erp-po-number"],
            "status": "issued", "version": 1, "exported": False, "currency": req["currency"],
            "total": req["total"], "supplier": lines[0]["supplier"], "requisition-header": {"id": req["id"]},
            "account-type": lines[0]["account"]["account-type"], "ship-to-user": req["requested-by"],
            "order-lines": [{
                "id": next_line_id(), "line-num": ln["line-num"], "description": ln["description"],
                "quantity": ln["quantity"], "price": ln["unit-price"], "total": ln["total"], "uom": ln["uom"],
                "account": ln["account"], "commodity": ln["commodity"], "need-by-date": ln["need-by-date"],
                "requisition-line": {"id": ln["id"]}} for ln in lines]}

    @staticmethod
    def _receipt_doc(rid: int, ol: dict, po: dict, quantity: Decimal, when: str) -> dict:
        return {"id": rid, "created-at": None, "updated-at": None, "type": "ReceivingQuantityConsumption",
                "status": "created", "quantity": str(quantity), "transaction-date": when, "exported": False,
                "order-line": {"id": ol["id"], "line-num": ol["line-num"], "po-number": po["po-number"],
                               "order-header-id": po["id"]},
                "account": ol["account"], "uom": ol["uom"]}

    def _invoice_line(self, lid: int, line_no: int, description: str, qty: Decimal, price: Decimal, tax_code: str,
                      ol: dict | None, po: dict | None, entity: str) -> dict:
        total = (qty * price).quantize(CENT)
        rate = TAX_RATES.get(tax_code, Decimal("0"))
        return {"id": lid, "line-num": line_no, "description": description, "quantity": str(qty),
                "price": str(price), "total": str(total), "uom": ol["uom"] if ol else {"id": 1, "code": "EA", "name": "Each"},
                "tax-code": {"code": tax_code}, "tax-rate": str(rate), "tax-amount": str((total * rate / 100).quantize(CENT)),
                "order-line-id": ol["id"] if ol else None, "po-number": po["po-number"] if po else None,
                "order-line-num": ol["line-num"] if ol else None,
                "account": ol["account"] if ol else self._account("", "", "", entity)}

    def _invoice_doc(self, iid: int, number: str, inv_date: date, sup: dict, currency: str, entity: str,
                     buyer: str, iban: str, lines: list[dict]) -> dict:
        net = sum((Decimal(ln["total"]) for ln in lines), Decimal("0"))
        tax = sum((Decimal(ln["tax-amount"]) for ln in lines), Decimal("0"))
        return {"id": iid, "created-at": None, "updated-at": None, "invoice-number": number,
                "invoice-date": stamp(inv_date, 0, 0), "document-type": "Invoice", "status": "pending_approval",
                "exported": False, "currency": self._currency(currency), "supplier": self._supplier_ref(sup),
                "account-type": self._account("", "", "", entity)["account-type"],
                "bill-to-address": {"name": buyer, "vat-number": None},
                "remit-to-address": {"name": sup["name"], "bank-account": {"iban": iban}},
                "payment-term": {"code": "NET30", "days-for-net-payment": 30},
                "net-due-date": stamp(inv_date + timedelta(days=30), 0, 0), "line-level-taxation": True,
                "tax-amount": str(tax), "gross-total": str(net + tax), "erp-document-number": "", "erp-status": "",
                "payment-status": "", "erp-comment": "", "invoice-lines": lines}

    # --- GET list ------------------------------------------------------------------------------
    def _list(self, coll: str, req: Request):
        q = dict(req.query)
        try:
            offset = int(q.pop("offset", 0))
            limit = min(MAX_LIMIT, int(q.pop("limit", MAX_LIMIT)))
            if offset < 0 or limit < 1:
                raise ValueError
        except ValueError:
            raise HttpError(400, errors("base", "offset and limit must be non-negative integers.")) from None
        order_by = q.pop("order_by", "id").replace("_", "-")
        descending = q.pop("dir", "asc").lower() == "desc"
        for ignored in ("fields", "return_object"):
            q.pop(ignored, None)
        tests = [self._filter(k, v) for k, v in q.items()]
        docs = [d for d in self.store.all(coll) if all(t(d) for t in tests)]
        docs.sort(key=lambda d: (self._sortable(order_by, d.get(order_by)), d["id"]), reverse=descending)
        return docs[offset:offset + limit]

    @staticmethod
    def _sortable(field: str, value: Any) -> Any:
        if field.endswith("-at") or field.endswith("-date"):
            return mapping.parse_ts(value) if value else datetime.min.replace(tzinfo=UTC)
        return (0, value) if isinstance(value, int | float) else (1, as_text(value))

    def _filter(self, key: str, value: str):
        field, _, rest = key.partition("[")
        op = rest.rstrip("]")
        field = field.replace("_", "-")
        if op in ("gt", "lt"):
            try:
                bound = mapping.parse_ts(value) if field.endswith("-at") or field.endswith("-date") else Decimal(value)
            except (ValueError, InvalidOperation):
                raise HttpError(400, errors("base", f"Invalid value for {key}: {value!r}.")) from None

            def compare(d: dict) -> bool:
                raw = d.get(field)
                if raw in (None, ""):
                    return False
                v = mapping.parse_ts(raw) if isinstance(bound, datetime) else Decimal(str(raw))
                return v > bound if op == "gt" else v < bound
            return compare
        if op:  # nested attribute: supplier[number]=V10010
            return lambda d: isinstance(d.get(field), dict) and as_text(d[field].get(op.replace("_", "-"))) == value
        return lambda d: as_text(d.get(field)) == value

    # --- requisitions ----------------------------------------------------------------------------
    def _resolve_user(self, ref: Any) -> dict | None:
        if not isinstance(ref, dict):
            return None
        for u in self.store.all("users"):
            if any(ref.get(k) not in (None, "") and as_text(ref.get(k)) == as_text(u.get(k))
                   for k in ("id", "employee-number", "login", "email")):
                return u
        return None

    def _resolve(self, coll: str, ref: Any, keys: tuple[str, ...]) -> dict | None:
        if not isinstance(ref, dict):
            return None
        return next((d for d in self.store.all(coll)
                     if any(ref.get(k) not in (None, "") and as_text(ref.get(k)) == as_text(d.get(k)) for k in keys)),
                    None)

    def _create_requisition(self, req: Request, *, submit: bool | None = None):
        body = self._body(req, "requisition")
        problems: list[str] = []
        user = self._resolve_user(body.get("requested-by"))
        if user is None:
            problems.append("Requested by must be an existing user (id, employee-number, login or email).")
        entity = body.get("legal-entity") or (user or {}).get("legal-entity") or ""
        currency = as_text((body.get("currency") or {}).get("code")) if isinstance(body.get("currency"), dict) else ""
        if not currency:
            problems.append("Currency can't be blank.")
        raw_lines = body.get("requisition-lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            problems.append("Requisition lines can't be blank.")
            raw_lines = []
        lines = []
        for i, ln in enumerate(raw_lines, start=1):
            if not isinstance(ln, dict):
                problems.append(f"Line {i} is not an object.")
                continue
            try:
                qty, price = dec(ln.get("quantity")), dec(ln.get("unit-price"))
                if qty <= 0 or price < 0:
                    raise InvalidOperation
            except InvalidOperation:
                problems.append(f"Line {i}: quantity and unit-price must be positive numbers.")
                continue
            commodity = self._resolve("commodities", ln.get("commodity"), ("id", "code", "name"))
            supplier = self._resolve("suppliers", ln.get("supplier"), ("id", "number"))
            if commodity is None:
                problems.append(f"Line {i}: commodity not found.")
                continue
            if ln.get("supplier") is not None and supplier is None:
                problems.append(f"Line {i}: supplier not found.")
                continue
            account = ln.get("account") if isinstance(ln.get("account"), dict) else {}
            uom = as_text((ln.get("uom") or {}).get("code")) if isinstance(ln.get("uom"), dict) else ""
            need_by = ln.get("need-by-date") or body.get("need-by-date")
            lines.append({
                "id": None, "line-num": i, "description": as_text(ln.get("description")),
                "need-by-date": need_by, "quantity": str(qty), "unit-price": str(price),
                "total": str((qty * price).quantize(CENT)), "source-type": "Non-Catalog Request",
                "line-type": "RequisitionQuantityLine", "order-line-id": None,
                "account": self._account(as_text(account.get("segment-1")) or commodity["gl-account"],
                                         as_text(account.get("segment-2")) or (user or {}).get("cost-center", ""),
                                         as_text(account.get("segment-3")), entity),
                "commodity": self._commodity_ref(commodity), "currency": self._currency(currency),
                "supplier": self._supplier_ref(supplier) if supplier else None,
                "uom": {"id": 1 if uom in ("", "EA") else 2, "code": uom or "EA", "name": uom or "Each"}})
        if problems:
            return 422, errors("requisition", *problems)
        submit = bool(body.get("submit-for-approval")) if submit is None else submit
        with self.lock:
            for ln in lines:
                ln["id"] = self._new_id("lines")
            doc = {"id": self._new_id("requisitions"), "status": "draft", "submitted-at": None, "exported": False,
                   "need-by-date": lines[0]["need-by-date"], "justification": as_text(body.get("justification")),
                   "reject-reason-comment": None,
                   "total": str(sum((Decimal(ln["total"]) for ln in lines), Decimal("0"))),
                   "currency": self._currency(currency), "requested-by": self._user_ref(user),
                   "requisition-description": as_text(body.get("requisition-description")), "legal-entity": entity,
                   "erp-po-number": "", "erp-commitment": "", "validation-status": "", "validation-messages": "",
                   "requisition-lines": lines}
            self._save("requisitions", doc, created=True)
            self.count("requisitions.created")
        if submit:
            return 201, self._submit_doc(doc["id"])
        return 201, doc

    def _create_and_submit(self, req: Request):
        return self._create_requisition(req, submit=True)

    def _submit(self, req: Request):
        return self._submit_doc(req.match["id"])

    def _submit_doc(self, rid: Any) -> dict:
        with self.lock:
            doc = copy.deepcopy(self._get_or_404("requisitions", rid))
            if doc["status"] != "draft":
                raise HttpError(422, errors("requisition", f"Requisition {rid} is {doc['status']}; only a draft "
                                                           "can be submitted for approval."))
            doc.update({"status": "pending_approval", "validation-status": "", "validation-messages": ""})
            doc["submitted-at"] = self._tick()
            self._save("requisitions", doc)
            callout = dict(self.callout)
        if callout.get("url"):
            # Outside the lock: the receiver may well call this API back while it validates.
            self._call_out(doc, callout)
        return self._get_or_404("requisitions", rid)

    def _call_out(self, doc: dict, callout: dict) -> None:
        status, messages = "unavailable", []
        try:
            record = mapping.map_requisition(doc)
            data = json.dumps(record, default=str).encode()  # Decimals as exact strings
            request = urllib.request.Request(callout["url"], data=data, method="POST", headers={
                "Content-Type": "application/json", "Accept": "application/json",
                "Authorization": f"Token {callout.get('token', '')}"})
            with urllib.request.urlopen(request, timeout=float(callout.get("timeout") or 5)) as resp:
                answer = json.loads(resp.read() or b"null")
            if not isinstance(answer, dict) or answer.get("status") not in ("valid", "invalid"):
                raise ValueError(f"unexpected answer {str(answer)[:200]}")
            status, messages = answer["status"], [str(m) for m in answer.get("messages") or []]
        except (OSError, ValueError, mapping.MappingError) as exc:  # URLError, timeouts, bad JSON
            messages = [f"Call out failed: {exc}"]
        self.count(f"callouts.{status}")
        with self.lock:
            current = copy.deepcopy(self._get_or_404("requisitions", doc["id"]))
            if current["status"] != "pending_approval" or current["submitted-at"] != doc["submitted-at"]:
                return  # changed meanwhile (decided, resubmitted): the late answer does not apply
            current.update({"validation-status": status, "validation-messages": "\n".join(messages)})
            if status == "invalid":
                current["status"] = "draft"  # back to the requester, as a Coupa Call Out refusal does
            self._save("requisitions", current)
            self.callout_log = [{"requisition": doc["id"], "status": status, "messages": messages},
                                *self.callout_log][:20]

    def _update_requisition(self, req: Request):
        body = self._body(req, "requisition")
        unknown = sorted(set(body) - REQ_FIELDS)
        if unknown:
            return 422, errors("requisition", f"Unknown or read-only attribute(s): {', '.join(unknown)}.")
        with self.lock:
            doc = copy.deepcopy(self._get_or_404("requisitions", req.match["id"]))
            before = copy.deepcopy(doc)
            target = body.get("status", doc["status"])
            if target not in REQ_STATUSES:
                return 422, errors("requisition", f"Status '{target}' is not valid.")
            if target != doc["status"] and doc["status"] not in REQ_TRANSITIONS.get(target, set()):
                return 422, errors("requisition", f"A {doc['status']} requisition cannot become {target}.")
            po_number = as_text(body.get("erp-po-number", doc["erp-po-number"]))
            if doc["status"] == "ordered" and doc["erp-po-number"] and po_number != doc["erp-po-number"]:
                return 422, errors("requisition", f"Requisition {doc['id']} is already ordered on "
                                                  f"{doc['erp-po-number']}.")
            if target == "ordered" and not po_number:
                return 422, errors("requisition", "An ordered requisition needs its erp-po-number.")
            if "exported" in body and not isinstance(body["exported"], bool):
                return 422, errors("requisition", "exported must be true or false.")
            for key, value in body.items():
                doc[key] = value if key == "exported" else (None if value is None else as_text(value))
            if doc != before:
                self._save("requisitions", doc)
            if doc["status"] == "ordered":
                self._ensure_po(doc)
            return self._get_or_404("requisitions", doc["id"])

    def _ensure_po(self, req: dict) -> dict:
        """The PO numbered by the ERP, created once per number whatever how often we are told."""
        existing = next((p for p in self.store.all("purchase_orders") if p["po-number"] == req["erp-po-number"]), None)
        if existing:
            return existing
        po = self._po_from(req, self._new_id("purchase_orders"), lambda: self._new_id("lines"))
        self._save("purchase_orders", po, created=True)
        doc = copy.deepcopy(self._get_or_404("requisitions", req["id"]))
        for rl, ol in zip(doc["requisition-lines"], po["order-lines"], strict=True):
            rl["order-line-id"] = ol["id"]
        self._save("requisitions", doc)
        self.count("purchase_orders.created")
        return po

    # --- receipts and invoices ------------------------------------------------------------------
    def _update_flags(self, req: Request, coll: str, allowed: set[str], check) -> Any:
        resource = SINGULAR[coll]
        body = self._body(req, resource)
        unknown = sorted(set(body) - allowed)
        if unknown:
            return 422, errors(resource, f"Unknown or read-only attribute(s): {', '.join(unknown)}.")
        if "exported" in body and not isinstance(body["exported"], bool):
            return 422, errors(resource, "exported must be true or false.")
        with self.lock:
            doc = copy.deepcopy(self._get_or_404(coll, req.match["id"]))
            problem = check(doc, body)
            if problem:
                return 422, errors(resource, problem)
            changed = {k: v for k, v in body.items() if doc.get(k) != v}
            if changed:
                doc.update(changed)
                self._save(coll, doc)
            return self._get_or_404(coll, doc["id"])

    def _update_receipt(self, req: Request):
        return self._update_flags(req, "receiving_transactions", {"exported"}, lambda doc, body: "")

    def _update_invoice(self, req: Request):
        def check(doc: dict, body: dict) -> str:
            status = body.get("status", doc["status"])
            if status not in INVOICE_STATUSES:
                return f"Status '{status}' is not valid."
            if doc["status"] == "voided" and status != "voided":
                return f"Invoice {doc['invoice-number']} is voided."
            if body.get("payment-status", "") not in PAYMENT_STATUSES:
                return f"Payment status '{body['payment-status']}' is not valid."
            if any(not isinstance(body[k], str) for k in ("erp-document-number", "erp-status", "erp-comment") if k in body):
                return "Custom fields take text."
            return ""
        return self._update_flags(req, "invoices", INVOICE_FIELDS, check)

    def _update_supplier(self, req: Request):
        def check(doc: dict, body: dict) -> str:
            if any(not isinstance(v, str) for v in body.values()):
                return "Supplier attributes take text."
            if body.get("status", doc["status"]) not in ("active", "inactive", "draft"):
                return f"Status '{body['status']}' is not valid."
            return ""
        return self._update_flags(req, "suppliers", SUPPLIER_FIELDS, check)

    def _order_line(self, ref: Any) -> tuple[dict, dict] | None:
        if not isinstance(ref, dict):
            return None
        for po in self.store.all("purchase_orders"):
            for ol in po["order-lines"]:
                if as_text(ref.get("id")) == as_text(ol["id"]) or (
                        as_text(ref.get("po-number")) == po["po-number"]
                        and as_text(ref.get("line-num")) == as_text(ol["line-num"])):
                    return ol, po
        return None

    def _create_receipt(self, req: Request):
        body = self._body(req, "receiving-transaction")
        found = self._order_line(body.get("order-line"))
        if found is None:
            return 422, errors("receiving-transaction", "Order line not found (give its id, or po-number and line-num).")
        try:
            qty = dec(body.get("quantity"))
            if qty <= 0:
                raise InvalidOperation
        except InvalidOperation:
            return 422, errors("receiving-transaction", "Quantity must be a positive number.")
        when = body.get("transaction-date") or self._tick()
        try:
            mapping.parse_ts(str(when))
        except ValueError:
            return 422, errors("receiving-transaction", f"transaction-date is not a date: {when!r}.")
        ol, po = found
        with self.lock:
            doc = self._receipt_doc(self._new_id("receiving_transactions"), ol, po, qty, str(when))
            self.count("receipts.created")
            return 201, self._save("receiving_transactions", doc, created=True)

    def _create_invoice(self, req: Request):
        body = self._body(req, "invoice")
        problems = []
        number = as_text(body.get("invoice-number")).strip()
        supplier = self._resolve("suppliers", body.get("supplier"), ("id", "number"))
        currency = as_text((body.get("currency") or {}).get("code")) if isinstance(body.get("currency"), dict) else ""
        try:
            inv_date = date.fromisoformat(as_text(body.get("invoice-date"))[:10])
        except ValueError:
            problems.append("Invoice date is not a date.")
            inv_date = self.today
        if not number:
            problems.append("Invoice # can't be blank.")
        if supplier is None:
            problems.append("Supplier must be an existing supplier (id or number).")
        if not currency:
            problems.append("Currency can't be blank.")
        if supplier and any(d["supplier"]["id"] == supplier["id"] and d["invoice-number"] == number
                            for d in self.store.all("invoices")):
            problems.append(f"Invoice # {number} has already been used for this supplier.")
        raw_lines = body.get("invoice-lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            problems.append("Invoice lines can't be blank.")
            raw_lines = []
        parsed = []
        for i, ln in enumerate(raw_lines, start=1):
            try:
                qty, price = dec(ln.get("quantity")), dec(ln.get("price"))
            except (InvalidOperation, AttributeError):
                problems.append(f"Line {i}: quantity and price must be numbers.")
                continue
            ref = {"id": ln.get("order-line-id"), "po-number": ln.get("po-number"), "line-num": ln.get("order-line-num")}
            found = self._order_line(ref) if any(v not in (None, "") for v in ref.values()) else None
            if found is None and any(v not in (None, "") for v in ref.values()):
                problems.append(f"Line {i}: order line not found.")
                continue
            tax = ln.get("tax-code")
            parsed.append((i, as_text(ln.get("description")), qty, price,
                           as_text(tax.get("code")) if isinstance(tax, dict) else "", found))
        if problems:
            return 422, errors("invoice", *problems)
        pos = [f[1] for *_, f in parsed if f]
        entity = pos[0]["account-type"]["name"] if pos else supplier["company-code"]
        display = {e[0]: e[1] for e in ENTITIES}.get(entity, entity)
        with self.lock:
            lines = [self._invoice_line(self._new_id("lines"), i, desc, qty, price, tax, f[0] if f else None,
                                        f[1] if f else None, entity) for i, desc, qty, price, tax, f in parsed]
            doc = self._invoice_doc(self._new_id("invoices"), number, inv_date, supplier, currency, entity, display,
                                    supplier.get("remit-to-iban", ""), lines)
            if as_text(body.get("document-type")).lower() == "credit note":
                doc["document-type"] = "Credit Note"
            self.count("invoices.created")
            return 201, self._save("invoices", doc, created=True)

    # --- control and console -----------------------------------------------------------------------
    def _set_callout(self, req: Request):
        body = self._body(req, "callout")
        with self.lock:
            self.callout = {"url": as_text(body.get("url")), "token": as_text(body.get("token")),
                            "timeout": body.get("timeout") or 5}
        return {"url": self.callout["url"], "configured": bool(self.callout["url"])}

    def stats_payload(self) -> dict:
        with self.lock:
            return {
                **self.stats,
                **{f"{c}": len(self.store.data.get(c, {})) for c in COLLECTIONS},
                "purchase_orders_by_number": dict(Counter(p["po-number"] for p in self.store.all("purchase_orders"))),
                "requisitions_by_status": dict(Counter(r["status"] for r in self.store.all("requisitions"))),
                "not_exported": {c: sum(1 for d in self.store.all(c) if not d.get("exported"))
                                 for c in ("requisitions", "receiving_transactions", "invoices")},
            }

    def _console(self, req: Request) -> str:
        e = html.escape

        def recent(coll: str, n: int = 25) -> list[dict]:
            return sorted(self.store.all(coll), key=lambda d: (d["updated-at"], d["id"]), reverse=True)[:n]

        def table(head: list[str], rows: list[list[Any]]) -> str:
            cells = "".join(f"<tr>{''.join(f'<td>{e(as_text(c))}</td>' for c in row)}</tr>" for row in rows)
            return f"<table><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>{cells}</table>"

        reqs = table(["id", "title", "requester", "status", "validation", "messages", "PO", "total", "updated"],
                     [[r["id"], r["requisition-description"], r["requested-by"]["employee-number"], r["status"],
                       r["validation-status"], r["validation-messages"], r["erp-po-number"],
                       f"{r['total']} {r['currency']['code']}", r["updated-at"]] for r in recent("requisitions")])
        pos = table(["id", "PO number", "supplier", "status", "total", "created"],
                    [[p["id"], p["po-number"], p["supplier"]["name"], p["status"],
                      f"{p['total']} {p['currency']['code']}", p["created-at"]] for p in recent("purchase_orders")])
        invs = table(["id", "number", "supplier", "status", "total", "exported", "ERP doc", "payment"],
                     [[i["id"], i["invoice-number"], i["supplier"]["name"], i["status"],
                       f"{i['gross-total']} {i['currency']['code']}", i["exported"], i["erp-document-number"],
                       i["payment-status"]] for i in recent("invoices")])
        callout = e(self.callout.get("url") or "not configured")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>Coupa sandbox</title>"
                "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
                "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;white-space:pre-line}</style></head>"
                f"<body><h1>Coupa sandbox</h1><p>Call out: {callout}</p>"
                f"<h2>Requisitions</h2>{reqs}<h2>Purchase orders</h2>{pos}<h2>Invoices</h2>{invs}</body></html>")


if __name__ == "__main__":  # python -m connectors.coupa.sandbox.server [port]
    import sys

    from connectors.sandboxkit.kit import serve

    serve(CoupaSandbox(seed=42), port=int(sys.argv[1]) if len(sys.argv) > 1 else 8104)
