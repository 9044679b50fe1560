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
  invoice's IBAN is at ``remit-to-address.bank-account.iban`` (suppliers keep it as ``remit-to-iban``);
  ``updated-at`` comes from a clock that never repeats or goes back (so ``updated-at[gt]`` never
  hides a change), in UTC (``+00:00``).
- **The Call Out body** is a sandbox choice too: the requisition in the workbench's canonical shape
  (``connectors/README.md``, "coupa"), as an integration layer between Coupa and the workbench's
  validation endpoint would send it; a real Call Out posts Coupa's own requisition JSON.
  ``callout_body`` writes it out itself; no sandbox module imports the connector's mapping.

Option ``coupa_only_suppliers=True`` adds four suppliers that exist only in Coupa, one per outcome of the
workbench's supplier crosswalk (``seed._coupa_only_suppliers``). Off by default: the seeded supplier list is
what the ERP has.

Control (no auth): ``POST /sandbox/callout {"url", "token", "timeout"}`` (``{"url": ""}`` turns it off),
``GET /sandbox/stats`` (``purchase_orders_by_number`` shows a PO created twice), ``GET /`` (console).

Modules: this one routes, authenticates, keeps the clock, ids and store, and answers HTTP;
``seed.py`` builds the seeded documents and the Coupa-shaped fragments every document is made of;
``rules.py`` decides what a write may change and what a new document needs; ``console.py`` renders
the HTML console.
"""

from __future__ import annotations

import copy
import hmac
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.sandboxkit.kit import HttpError, Request, Sandbox
from connectors.sandboxkit.world import ENTITIES

from . import console, rules
from .rules import as_text, errors
from .seed import (
    COLLECTIONS,
    invoice_doc,
    invoice_line,
    parse_ts,
    po_from,
    receipt_doc,
    seed_documents,
    stamp,
    stamp_lines,
    today_of,
    user_ref,
)
from .seed import currency as currency_ref

SINGULAR = {
    "users": "user",
    "suppliers": "supplier",
    "commodities": "commodity",
    "contracts": "contract",
    "requisitions": "requisition",
    "purchase_orders": "order-header",
    "receiving_transactions": "receiving-transaction",
    "invoices": "invoice",
}
MAX_LIMIT = 50


def callout_body(doc: dict) -> dict:
    """What the Call Out POSTs: the requisition in the workbench's canonical shape (README "coupa";
    a sandbox choice, see the module docstring), written out here from the stored document rather
    than by the connector's mapping. Amounts stay the decimal strings Coupa stores."""
    user = doc["requested-by"]
    code = doc["currency"]["code"]

    def utc(value: str | None) -> str | None:
        return parse_ts(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None

    def ref(obj: Any, key: str) -> str:
        return as_text(obj.get(key)) if isinstance(obj, dict) else ""

    lines = []
    for ln in doc["requisition-lines"]:
        acct = ln.get("account") or {}
        lines.append(
            {
                "external_id": str(ln["id"]),
                "line_no": int(ln["line-num"]),
                "description": as_text(ln["description"]),
                "category": ref(ln.get("commodity"), "code"),
                "quantity": ln["quantity"],
                "unit_price": ln["unit-price"],
                "amount": ln["total"],
                "currency": ref(ln.get("currency"), "code") or code,
                "uom": ref(ln.get("uom"), "code"),
                "gl_account": as_text(acct.get("segment-1")),
                "cost_center": as_text(acct.get("segment-2")),
                "project": as_text(acct.get("segment-3")),
                "supplier_code": ref(ln.get("supplier"), "number"),
                "supplier_name": ref(ln.get("supplier"), "name"),
                "need_by_date": date.fromisoformat(ln["need-by-date"][:10]).isoformat()
                if ln.get("need-by-date")
                else None,
            }
        )
    return {
        "external_id": str(doc["id"]),
        "number": str(doc["id"]),
        "entity": as_text(doc.get("legal-entity")),
        "requester_code": as_text(user.get("employee-number")),
        "requester_name": " ".join(p for p in (as_text(user.get("firstname")), as_text(user.get("lastname"))) if p),
        "requester_email": as_text(user.get("email")),
        "title": as_text(doc.get("requisition-description")),
        "currency": code,
        "total": doc["total"],
        "status": as_text(doc["status"]),
        "submitted_at": utc(doc.get("submitted-at")),
        "updated_at": utc(doc.get("updated-at")),
        "erp_po_number": as_text(doc.get("erp-po-number")),
        "validation_status": as_text(doc.get("validation-status")),
        "lines": lines,
    }


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
        return today_of(self.options.get("today"))

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
        collections, meta = seed_documents(
            seed=self.seed,
            today=self.today,
            n_employees=int(self.options.get("n_employees") or 200),
            n_requisitions=int(self.options.get("n_requisitions") or 60),
            coupa_only_suppliers=bool(self.options.get("coupa_only_suppliers")),
        )
        for coll in (
            "users",
            "commodities",
            "suppliers",
            "contracts",
            "requisitions",
            "purchase_orders",
            "receiving_transactions",
            "invoices",
        ):
            self.store.put_many(coll, collections[coll])
        self.store.put("meta", "state", meta)

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
        return docs[offset : offset + limit]

    @staticmethod
    def _sortable(field: str, value: Any) -> Any:
        if field.endswith("-at") or field.endswith("-date"):
            return parse_ts(value) if value else datetime.min.replace(tzinfo=UTC)
        return (0, value) if isinstance(value, int | float) else (1, as_text(value))

    def _filter(self, key: str, value: str):
        field, _, rest = key.partition("[")
        op = rest.rstrip("]")
        field = field.replace("_", "-")
        if op in ("gt", "lt"):
            try:
                bound = parse_ts(value) if field.endswith("-at") or field.endswith("-date") else Decimal(value)
            except (ValueError, InvalidOperation):
                raise HttpError(400, errors("base", f"Invalid value for {key}: {value!r}.")) from None

            def compare(d: dict) -> bool:
                raw = d.get(field)
                if raw in (None, ""):
                    return False
                v = parse_ts(raw) if isinstance(bound, datetime) else Decimal(str(raw))
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
            if any(
                ref.get(k) not in (None, "") and as_text(ref.get(k)) == as_text(u.get(k))
                for k in ("id", "employee-number", "login", "email")
            ):
                return u
        return None

    def _resolve(self, coll: str, ref: Any, keys: tuple[str, ...]) -> dict | None:
        if not isinstance(ref, dict):
            return None
        return next(
            (
                d
                for d in self.store.all(coll)
                if any(ref.get(k) not in (None, "") and as_text(ref.get(k)) == as_text(d.get(k)) for k in keys)
            ),
            None,
        )

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
        lines = rules.requisition_lines(body, user, entity, currency, self._resolve, problems)
        if problems:
            return 422, errors("requisition", *problems)
        submit = bool(body.get("submit-for-approval")) if submit is None else submit
        with self.lock:
            for ln in lines:
                ln["id"] = self._new_id("lines")
            doc = {
                "id": self._new_id("requisitions"),
                "status": "draft",
                "submitted-at": None,
                "exported": False,
                "need-by-date": lines[0]["need-by-date"],
                "justification": as_text(body.get("justification")),
                "reject-reason-comment": None,
                "total": str(sum((Decimal(ln["total"]) for ln in lines), Decimal("0"))),
                "currency": currency_ref(currency),
                "requested-by": user_ref(user),
                "requisition-description": as_text(body.get("requisition-description")),
                "legal-entity": entity,
                "erp-po-number": "",
                "erp-commitment": "",
                "validation-status": "",
                "validation-messages": "",
                "requisition-lines": lines,
            }
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
            problem = rules.submittable(doc)
            if problem:
                raise HttpError(422, errors("requisition", problem))
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
            data = json.dumps(callout_body(doc)).encode()
            request = urllib.request.Request(
                callout["url"],
                data=data,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "Authorization": f"Token {callout.get('token', '')}",
                },
            )
            with urllib.request.urlopen(request, timeout=float(callout.get("timeout") or 5)) as resp:
                answer = json.loads(resp.read() or b"null")
            if not isinstance(answer, dict) or answer.get("status") not in ("valid", "invalid"):
                raise ValueError(f"unexpected answer {str(answer)[:200]}")
            status, messages = answer["status"], [str(m) for m in answer.get("messages") or []]
        except (OSError, ValueError, KeyError, TypeError) as exc:  # URLError, timeouts, bad JSON, odd documents
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
            self.callout_log = [{"requisition": doc["id"], "status": status, "messages": messages}, *self.callout_log][
                :20
            ]

    def _update_requisition(self, req: Request):
        body = self._body(req, "requisition")
        unknown = rules.unknown_attributes(body, rules.REQ_FIELDS)
        if unknown:
            return 422, errors("requisition", unknown)
        with self.lock:
            doc = copy.deepcopy(self._get_or_404("requisitions", req.match["id"]))
            before = copy.deepcopy(doc)
            problem = rules.requisition_update(doc, body)
            if problem:
                return 422, errors("requisition", problem)
            rules.apply_requisition_update(doc, body)
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
        po = po_from(req, self._new_id("purchase_orders"), lambda: self._new_id("lines"))
        self._save("purchase_orders", po, created=True)
        doc = copy.deepcopy(self._get_or_404("requisitions", req["id"]))
        for rl, ol in zip(doc["requisition-lines"], po["order-lines"], strict=True):
            rl["order-line-id"] = ol["id"]
        self._save("requisitions", doc)
        self.count("purchase_orders.created")
        return po

    # --- receipts, invoices, suppliers -------------------------------------------------------------
    def _update_flags(self, req: Request, coll: str, allowed: set[str], check) -> Any:
        resource = SINGULAR[coll]
        body = self._body(req, resource)
        problem = rules.unknown_attributes(body, allowed) or rules.exported_flag(body)
        if problem:
            return 422, errors(resource, problem)
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
        return self._update_flags(req, "receiving_transactions", rules.RECEIPT_FIELDS, rules.receipt_update)

    def _update_invoice(self, req: Request):
        return self._update_flags(req, "invoices", rules.INVOICE_FIELDS, rules.invoice_update)

    def _update_supplier(self, req: Request):
        return self._update_flags(req, "suppliers", rules.SUPPLIER_FIELDS, rules.supplier_update)

    def _order_line(self, ref: Any) -> tuple[dict, dict] | None:
        if not isinstance(ref, dict):
            return None
        for po in self.store.all("purchase_orders"):
            for ol in po["order-lines"]:
                if as_text(ref.get("id")) == as_text(ol["id"]) or (
                    as_text(ref.get("po-number")) == po["po-number"]
                    and as_text(ref.get("line-num")) == as_text(ol["line-num"])
                ):
                    return ol, po
        return None

    def _create_receipt(self, req: Request):
        body = self._body(req, "receiving-transaction")
        found = self._order_line(body.get("order-line"))
        qty, problem = rules.receipt(body, found)
        if problem:
            return 422, errors("receiving-transaction", problem)
        when = body.get("transaction-date") or self._tick()
        problem = rules.transaction_date(when)
        if problem:
            return 422, errors("receiving-transaction", problem)
        ol, po = found
        with self.lock:
            doc = receipt_doc(self._new_id("receiving_transactions"), ol, po, qty, str(when))
            self.count("receipts.created")
            return 201, self._save("receiving_transactions", doc, created=True)

    def _create_invoice(self, req: Request):
        body = self._body(req, "invoice")
        supplier = self._resolve("suppliers", body.get("supplier"), ("id", "number"))

        def taken(sup: dict, number: str) -> bool:
            return any(
                d["supplier"]["id"] == sup["id"] and d["invoice-number"] == number for d in self.store.all("invoices")
            )

        new, problems = rules.invoice(body, supplier, self.today, taken, self._order_line)
        if problems:
            return 422, errors("invoice", *problems)
        parsed = new["lines"]
        pos = [f[1] for *_, f in parsed if f]
        entity = pos[0]["account-type"]["name"] if pos else supplier["company-code"]
        display = {e[0]: e[1] for e in ENTITIES}.get(entity, entity)
        with self.lock:
            lines = [
                invoice_line(
                    self._new_id("lines"), i, desc, qty, price, tax, f[0] if f else None, f[1] if f else None, entity
                )
                for i, desc, qty, price, tax, f in parsed
            ]
            doc = invoice_doc(
                self._new_id("invoices"),
                new["number"],
                new["date"],
                supplier,
                new["currency"],
                entity,
                display,
                supplier.get("remit-to-iban", ""),
                lines,
            )
            if as_text(body.get("document-type")).lower() == "credit note":
                doc["document-type"] = "Credit Note"
                doc["original-invoice-number"] = as_text(body.get("original-invoice-number"))[:40]
            self.count("invoices.created")
            return 201, self._save("invoices", doc, created=True)

    # --- control and console -----------------------------------------------------------------------
    def _set_callout(self, req: Request):
        body = self._body(req, "callout")
        with self.lock:
            self.callout = {
                "url": as_text(body.get("url")),
                "token": as_text(body.get("token")),
                "timeout": body.get("timeout") or 5,
            }
        return {"url": self.callout["url"], "configured": bool(self.callout["url"])}

    def stats_payload(self) -> dict:
        with self.lock:
            return {
                **self.stats,
                **{f"{c}": len(self.store.data.get(c, {})) for c in COLLECTIONS},
                "purchase_orders_by_number": dict(Counter(p["po-number"] for p in self.store.all("purchase_orders"))),
                "requisitions_by_status": dict(Counter(r["status"] for r in self.store.all("requisitions"))),
                "not_exported": {
                    c: sum(1 for d in self.store.all(c) if not d.get("exported"))
                    for c in ("requisitions", "receiving_transactions", "invoices")
                },
            }

    def _console(self, req: Request) -> str:
        return console.render(self.store.all, self.callout.get("url") or "")
