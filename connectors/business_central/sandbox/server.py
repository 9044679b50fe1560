"""A Business Central API v2.0 sandbox: the ERP the workbench reads master data from and posts to.

Serves ``/v2.0/[{tenant}/]{environment}/api/v2.0/companies(...)/...`` in BC's OData shape (GUID ids,
weak ETags, ``lastModifiedDateTime``, ``$filter``/``$top``, server-driven paging with
``$skiptoken``), deep-insert purchase invoices and the ``Microsoft.NAV.post`` action with BC's
refusals. Tokens come from ``POST /oauth2/v2.0/token`` (Azure AD's path without the tenant).
Company setup tables the workbench copies too: ``paymentTerms`` and ``currencies`` (foreign
currencies only, as in BC; the local one is the company's ``currencyCode``).
Sandbox-only controls: ``POST /sandbox/touch`` (change master data so incremental reads have work),
``POST /sandbox/drift`` (add, change or delete master data *without* a new ``lastModifiedDateTime``:
what only a reconciliation notices), ``POST /sandbox/posted-drift`` (lose, cancel or re-total a
posted purchase invoice the same way) and the kit's faults (``"timeout_methods": ["POST"]`` limits
hangs to writes).

Procure-to-pay: ``vendors``, ``purchaseOrders`` (+ ``purchaseOrderLines``, deep insert with a manual
``number``), ``purchaseReceipts`` (+ lines, read only); the automation API's
``/api/microsoft/automation/v2.0/companies(...)/users`` (who changed a vendor: ``systemModifiedBy``)
and the custom API page ``/api/northwind/finance/v1.0/companies(...)/budgetEntries`` (read only).
A purchase invoice names its order with the sandbox's request property ``purchaseOrderNumber``
(see rules.py); posting it updates the order lines' ``invoicedQuantity``. Purchase credit memos
(``purchaseCreditMemos`` + lines, deep insert, ``Microsoft.NAV.post``; credit_memos.py) are applied
to a posted invoice of the same vendor; a vendor's ``balance`` is its open invoices less its open
credit memos, computed as it is read.

Accruals: ``journals`` (``ACCRUALS``, balanced by 2120 Accrued Liabilities), their ``journalLines``
and ``Microsoft.NAV.post``, and the ``generalLedgerEntries`` posting makes (journals.py).
"""

from __future__ import annotations

import html
import re
import threading
import time
import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from connectors.sandboxkit.kit import HttpError, Request, Sandbox
from connectors.sandboxkit.world import build_world, stable_guid

from . import credit_memos, rules
from .journals import JournalsMixin
from .odata import BcError, Clock, page_of, parse_dt, parse_filter, parse_top, syntax_error
from .seed import DEPARTMENT, PROJECT, ZERO_GUID, order_line, order_totals, purchase_order, seed_documents, stamp

ROOT = r"/v2\.0/(?:[^/]+/)?(?P<env>[^/]+)/api"
API = ROOT + r"/v2\.0"
COMPANY = API + r"/companies\((?P<cid>[^)]*)\)"
AUTOMATION_COMPANY = ROOT + r"/microsoft/automation/v2\.0/companies\((?P<cid>[^)]*)\)"
CUSTOM_COMPANY = ROOT + r"/northwind/finance/v1\.0/companies\((?P<cid>[^)]*)\)"  # the budget API page
KEY = r"\((?P<key>[^)]*)\)"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_PAGE_SIZE = 20000  # BC's own ceiling for odata.maxpagesize

# entity set -> (OData type name, BC table caption used in "does not exist" errors)
SETS = {
    "dimensions": ("dimension", "Dimension"),
    "dimensionValues": ("dimensionValue", "Dimension Value"),
    "accounts": ("account", "G/L Account"),
    "taxGroups": ("taxGroup", "Tax Group"),
    "accountingPeriods": ("accountingPeriod", "Accounting Period"),
    "employees": ("employee", "Employee"),
    "projects": ("project", "Job"),
    "paymentTerms": ("paymentTerm", "Payment Terms"),
    "currencies": ("currency", "Currency"),
    "purchaseInvoices": ("purchaseInvoice", "Purch. Inv. Entity Aggregate"),
    "companyInformation": ("companyInformation", "Company Information"),
    "vendors": ("vendor", "Vendor"),
    "purchaseOrders": ("purchaseOrder", "Purchase Order Entity Buffer"),
    "purchaseReceipts": ("purchaseReceipt", "Purch. Rcpt. Header"),
    "purchaseCreditMemos": ("purchaseCreditMemo", "Purch. Cr. Memo Entity Buffer"),
    "journals": ("journal", "Gen. Journal Batch"),
    "generalLedgerEntries": ("generalLedgerEntry", "G/L Entry"),
}
SET_NAMES = "|".join(SETS)
SETTLED = ("purchaseInvoices", "purchaseCreditMemos", "vendors")  # sets that show payments: settle first
# Sets outside the standard API (automation API, custom API page).
TYPES = {**SETS, "users": ("user", "User"), "budgetEntries": ("budgetEntry", "Budget Entry")}
# document set -> its lines' navigation property (lines are stored inside the document as ``_lines``)
LINES = {
    "purchaseInvoices": "purchaseInvoiceLines",
    "purchaseOrders": "purchaseOrderLines",
    "purchaseReceipts": "purchaseReceiptLines",
    "purchaseCreditMemos": "purchaseCreditMemoLines",
}

# /sandbox/touch: workbench stream -> (entity set, code property, name property)
TOUCHABLE = {
    "cost_centers": ("dimensionValues", "code", "displayName"),
    "employees": ("employees", "number", "displayName"),
    "gl_accounts": ("accounts", "number", "displayName"),
    "tax_codes": ("taxGroups", "code", "displayName"),
    "accounting_periods": ("accountingPeriods", "startingDate", "name"),
    "projects": ("projects", "number", "displayName"),
    "payment_terms": ("paymentTerms", "code", "displayName"),
    "currencies": ("currencies", "code", "displayName"),
    "purchase_invoices": ("purchaseInvoices", "number", None),
    "legal_entities": ("companyInformation", "displayName", None),
    "suppliers": ("vendors", "number", "displayName"),
    "purchase_orders": ("purchaseOrders", "number", None),
    "budgets": ("budgetEntries", "id", None),
}
REV_SUFFIX = re.compile(r" \(rev \d+\)$")
# /sandbox/drift: workbench stream -> {canonical field: BC property}; budgets are keyed by
# (costCenterCode, accountNumber, period) and legal entities are the companies themselves.
DRIFT_FIELDS = {
    "legal_entities": {"name": "displayName"},
    "cost_centers": {"name": "displayName"},
    "gl_accounts": {
        "name": "displayName",
        "category": "category",
        "blocked": "blocked",
        "account_type": "accountType",
        "direct_posting": "directPosting",
    },
    "tax_codes": {"name": "displayName", "tax_type": "taxType"},
    "accounting_periods": {"name": "name", "closed": "closed"},
    "employees": {"name": "displayName", "email": "email", "status": "status"},
    "projects": {"name": "displayName"},
    "payment_terms": {
        "name": "displayName",
        "due_date_calculation": "dueDateCalculation",
        "discount_date_calculation": "discountDateCalculation",
        "discount_percent": "discountPercent",
    },
    "currencies": {"name": "displayName", "symbol": "symbol", "decimals": "amountDecimalPlaces"},  # "2:2" (min:max)
    "suppliers": {
        "name": "displayName",
        "tax_id": "taxRegistrationNumber",
        "currency": "currencyCode",
        "blocked": "blocked",
    },
    "budgets": {"amount": "amount"},
}
POSTED_DRIFT = ("delete", "cancel", "change")  # /sandbox/posted-drift
DRIFT_ADDABLE = (
    "cost_centers",
    "gl_accounts",
    "tax_codes",
    "employees",
    "projects",
    "payment_terms",
    "currencies",
    "suppliers",
    "budgets",
)


def public(doc: dict) -> dict:
    """What the API shows of a stored document: no internal ``_`` keys, the ETag first as BC does."""
    out = {"@odata.etag": doc["@odata.etag"]} if "@odata.etag" in doc else {}
    out.update((k, v) for k, v in doc.items() if not k.startswith("_") and k != "@odata.etag")
    return out


class BusinessCentralSandbox(JournalsMixin, Sandbox):
    name = "business_central"
    token_path = "/oauth2/v2.0/token"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)  # runs setup(), then seed_store() on an empty store
        self._reindex()

    # --- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        opts = self.options
        today = opts.get("today")
        self.today: date = date.fromisoformat(today) if isinstance(today, str) else (today or date.today())
        self.n_employees = int(opts.get("n_employees", 200))
        self.n_lines = int(opts.get("n_lines", 0))  # the ERP needs master data only, not reports
        self.pay_after = float(opts.get("pay_after_seconds", 60))
        self.default_page_size = int(opts.get("page_size", 200))
        self.lock = threading.RLock()  # one writer at a time: create/post must not race into duplicates
        self._docs: dict[tuple[str, str], dict[str, dict]] = {}
        self._sorted: dict[tuple[str, str], tuple[list[dict], list[str]]] = {}
        self._fields: dict[str, set[str]] = {
            "purchaseInvoices": set(rules.INVOICE_FIELDS),
            "purchaseCreditMemos": set(credit_memos.FIELDS),
        }
        self._vin: dict[tuple[str, str, str], str] = {}  # (company, vendor, vendorInvoiceNumber) -> id
        self._vcm: dict[tuple[str, str, str], str] = {}  # (company, vendor, vendorCreditMemoNumber) -> id
        self._orders: dict[tuple[str, str], str] = {}  # (company, purchase order number) -> id
        self._open: dict[str, tuple[str, float]] = {}  # posted, unpaid invoice id -> (company, posted at)
        self.clock = Clock(parse_dt("2000-01-01T00:00:00Z"))

        route = self.route
        route("GET", API + r"/companies", self._list_companies)
        route("GET", API + r"/companies" + KEY, self._get_company)
        route("GET", COMPANY + rf"/(?P<set>{SET_NAMES})", self._list_set)
        route("GET", COMPANY + rf"/(?P<set>{SET_NAMES})" + KEY, self._get_one)
        route("GET", COMPANY + r"/dimensions" + KEY + r"/dimensionValues", self._list_dimension_values)
        route("GET", AUTOMATION_COMPANY + r"/users", self._list_users)
        route("GET", CUSTOM_COMPANY + r"/budgetEntries", self._list_budgets)
        route("POST", COMPANY + r"/purchaseOrders", self._create_order)
        route("POST", COMPANY + r"/purchaseInvoices", self._create_invoice)
        route("PATCH", COMPANY + r"/purchaseInvoices" + KEY, self._patch_invoice)
        route("POST", COMPANY + r"/purchaseInvoices" + KEY + r"/Microsoft\.NAV\.post", self._post_invoice)
        route("POST", COMPANY + r"/purchaseCreditMemos", self._create_credit_memo)
        route("POST", COMPANY + r"/purchaseCreditMemos" + KEY + r"/Microsoft\.NAV\.post", self._post_credit_memo)
        route("GET", COMPANY + rf"/(?P<set>{'|'.join(LINES)})" + KEY + r"/(?P<nav>\w+)", self._list_lines)
        route(
            "GET",
            COMPANY + r"/purchaseInvoices" + KEY + r"/purchaseInvoiceLines\((?P<line>[^)]*)\)"
            r"/dimensionSetLines",
            self._list_line_dimensions,
        )
        self._journal_routes(COMPANY, KEY)
        # Registered last: any other GET under the API names the segment BC does not know.
        route("GET", API + r"/.*", self._unknown_segment)
        route("POST", r"/sandbox/touch", self._touch, auth=False)
        route("POST", r"/sandbox/drift", self._drift, auth=False)
        route("POST", r"/sandbox/posted-drift", self._posted_drift, auth=False)
        route("GET", r"/", self._console, auth=False)

    def seed_store(self) -> None:
        world = build_world(seed=self.seed, today=self.today, n_employees=self.n_employees, n_lines=self.n_lines)
        for coll, docs in seed_documents(world, self.seed).items():
            self.store.put_many(coll, docs)

    def _reindex(self) -> None:
        """Build the in-memory indexes once; afterwards every write keeps them current."""
        latest = self.clock.last
        for coll, docs in self.store.data.items():
            for doc in docs.values():
                self._index(coll, doc)
                for field in ("lastModifiedDateTime", "systemModifiedAt"):
                    if doc.get(field):
                        latest = max(latest, parse_dt(doc[field]))
        self.clock.last = latest

    def _index(self, coll: str, doc: dict) -> None:
        cid = doc.get("_company", "")
        self._docs.setdefault((coll, cid), {})[doc["id"]] = doc
        self._sorted.pop((coll, cid), None)
        self._fields.setdefault(coll, set()).update(k for k in doc if not k.startswith(("_", "@")))
        if coll == "purchaseInvoices":
            self._vin[(cid, doc["vendorNumber"], doc["vendorInvoiceNumber"])] = doc["id"]
            for line in doc.get("_lines", []):
                self._fields.setdefault("purchaseInvoiceLines", set()).update(k for k in line if not k.startswith("_"))
            if doc["status"] == "Open" and doc.get("_postedAt") is not None:
                self._open[doc["id"]] = (cid, doc["_postedAt"])
        elif coll == "purchaseOrders":
            self._orders[(cid, doc["number"])] = doc["id"]
        elif coll == "purchaseCreditMemos":
            self._vcm[(cid, doc["vendorNumber"], doc["vendorCreditMemoNumber"])] = doc["id"]
            for line in doc.get("_lines", []):
                self._fields.setdefault("purchaseCreditMemoLines", set()).update(
                    k for k in line if not k.startswith("_")
                )

    def _save(self, coll: str, doc: dict) -> dict:
        with self.lock:
            self.store.put(coll, doc["id"], doc)
            self._index(coll, doc)
        return doc

    # --- kit hooks -----------------------------------------------------------------------------
    def error_body(self, status: int, code: str, message: str) -> Any:
        # BC appends a correlation id to every message; clients should not mistake it for content.
        return {"error": {"code": code, "message": f"{message}  CorrelationId:  {uuid.uuid4()}."}}

    def dispatch(self, req: Request) -> tuple[int, Any, dict, bool]:
        try:
            status, body, headers, hang = super().dispatch(req)
        except BcError as exc:
            raise HttpError(exc.status, self.error_body(exc.status, exc.code, exc.message)) from None
        return status, body, headers, hang

    def stats_payload(self) -> dict:
        documents: dict[str, int] = {}
        statuses: dict[str, int] = {}
        for doc in self.store.all("purchaseInvoices"):
            documents[doc["vendorInvoiceNumber"]] = documents.get(doc["vendorInvoiceNumber"], 0) + 1
            statuses[doc["status"]] = statuses.get(doc["status"], 0) + 1
        orders: dict[str, int] = {}
        for doc in self.store.all("purchaseOrders"):
            orders[doc["number"]] = orders.get(doc["number"], 0) + 1
        return {**self.stats, "documents": documents, "invoices": statuses, "orders": orders}

    # --- lookups -------------------------------------------------------------------------------
    def _rows(self, coll: str, cid: str) -> tuple[list[dict], list[str]]:
        """Rows of one company sorted by id (the paging key), cached until the next write."""
        cached = self._sorted.get((coll, cid))
        if cached is None:
            with self.lock:  # writers change the dict under this lock; never iterate it mid-change
                rows = sorted(self._docs.get((coll, cid), {}).values(), key=lambda d: d["id"])
                cached = self._sorted[(coll, cid)] = (rows, [d["id"] for d in rows])
        return cached

    def _company(self, req: Request) -> dict:
        cid = self._guid(req.match["cid"])
        company = self._docs.get(("companies", ""), {}).get(cid)
        if company is None:
            raise BcError(404, "BadRequest_ResourceNotFound", f"Resource not found for the segment 'companies({cid})'.")
        return company

    @staticmethod
    def _guid(key: str) -> str:
        key = key.strip("'")
        if not GUID.match(key):
            raise syntax_error(f"'{key}' is not a valid GUID key.")
        return key.lower()

    def _find(self, coll: str, cid: str, key: str) -> dict:
        key = self._guid(key)
        doc = self._docs.get((coll, cid), {}).get(key)
        if doc is None:
            caption = TYPES.get(coll, (coll, coll))[1]
            raise BcError(
                404,
                "Internal_RecordNotFound",
                f"The {caption} does not exist. Identification fields and values: Id='{{{key.upper()}}}'",
            )
        return doc

    def _ledger(self, cid: str) -> rules.Ledger:
        def rows(coll: str) -> list[dict]:
            return list(self._docs.get((coll, cid), {}).values())

        return rules.Ledger(
            company=self._docs[("companies", "")][cid],
            accounts={d["number"]: d for d in rows("accounts")},
            tax_groups={d["code"]: d for d in rows("taxGroups")},
            dimensions={d["code"]: d for d in rows("dimensions")},
            dim_values={(d["dimensionCode"], d["code"]): d for d in rows("dimensionValues")},
            vendors={d["number"]: d for d in [*rows("employees"), *rows("vendors")]},
            periods=sorted(rows("accountingPeriods"), key=lambda d: d["startingDate"]),
        )

    # --- OData listing -------------------------------------------------------------------------
    def _page_size(self, req: Request) -> tuple[int, bool]:
        m = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", req.headers.get("Prefer", "") or "")
        if m:
            return max(1, min(MAX_PAGE_SIZE, int(m.group(1)))), True
        return self.default_page_size, False

    def _context(self, req: Request, tail: str) -> str:
        # The API the request went to: the standard v2.0 one, the automation API or the custom page.
        m = re.search(r"/api/.*?(?=/companies)", req.path)
        api = m.group(0) if m else "/api/v2.0"
        return f"http://{req.headers.get('Host', 'localhost')}/v2.0/{req.match['env']}{api}/$metadata#{tail}"

    def _collection(
        self, req: Request, rows: list[dict], keys: list[str], coll: str, context: str, extra: Any = None, view=public
    ) -> tuple[int, dict, dict]:
        entity = TYPES.get(coll, (coll, coll))[0]
        predicate = parse_filter(req.query.get("$filter"), self._fields.get(coll, set()), entity)
        if extra is not None:
            predicate = (lambda d, p=predicate: extra(d) and p(d)) if predicate else extra
        top = parse_top(req.query.get("$top"))
        size, preferred = self._page_size(req)
        page, resume = page_of(rows, keys, predicate=predicate, after=req.query.get("$skiptoken"), size=size, top=top)
        body: dict[str, Any] = {"@odata.context": self._context(req, context), "value": [view(d) for d in page]}
        if resume is not None:
            body["@odata.nextLink"] = self._next_link(req, resume, None if top is None else top - len(page))
        return 200, body, ({"Preference-Applied": f"odata.maxpagesize={size}"} if preferred else {})

    @staticmethod
    def _next_link(req: Request, resume: str, top: int | None) -> str:
        query = {k: v for k, v in req.query.items() if k not in ("$skiptoken", "$top")}
        if top is not None:
            query["$top"] = str(top)
        query["$skiptoken"] = resume
        qs = urlencode(query, quote_via=quote, safe="$'(),:/")
        return f"http://{req.headers.get('Host', 'localhost')}{req.path}?{qs}"

    def _view(self, req: Request, coll: str, cid: str = ""):
        """``$expand=<lines>`` on a document set inlines its lines (the only $expand supported). A
        vendor's ``balance`` is computed as it is read (a FlowField in BC: it moves no timestamp)."""
        if coll == "vendors" and cid:
            balances = self._balances(cid)
            return lambda d: {**public(d), "balance": balances.get(d["number"], 0)}
        nav = LINES.get(coll)
        if nav is None or nav not in (req.query.get("$expand") or ""):
            return public
        return lambda d: {**public(d), nav: [public(ln) for ln in d["_lines"]]}

    # --- handlers: master data -----------------------------------------------------------------
    def _unknown_segment(self, req: Request):
        segment = re.sub(r"\(.*\)$", "", req.path.rstrip("/").rsplit("/", 1)[-1])
        raise BcError(404, "BadRequest_ResourceNotFound", f"Resource not found for the segment '{segment}'.")

    def _list_companies(self, req: Request):
        rows, keys = self._rows("companies", "")
        return self._collection(req, rows, keys, "companies", "companies")

    def _get_company(self, req: Request):
        company = self._docs.get(("companies", ""), {}).get(self._guid(req.match["key"]))
        if company is None:
            raise BcError(
                404,
                "BadRequest_ResourceNotFound",
                f"Resource not found for the segment 'companies({req.match['key']})'.",
            )
        return {"@odata.context": self._context(req, "companies/$entity"), **public(company)}

    def _list_set(self, req: Request):
        company, coll = self._company(req), req.match["set"]
        if coll in SETTLED:
            self._settle()
        rows, keys = self._rows(coll, company["id"])
        view = self._view(req, coll, company["id"])
        return self._collection(req, rows, keys, coll, f"companies({company['id']})/{coll}", view=view)

    def _get_one(self, req: Request):
        company, coll = self._company(req), req.match["set"]
        if coll in SETTLED:
            self._settle()
        doc = self._find(coll, company["id"], req.match["key"])
        return {
            "@odata.context": self._context(req, f"companies({company['id']})/{coll}/$entity"),
            **self._view(req, coll, company["id"])(doc),
        }

    def _list_dimension_values(self, req: Request):
        company = self._company(req)
        dimension = self._find("dimensions", company["id"], req.match["key"])
        rows, keys = self._rows("dimensionValues", company["id"])
        return self._collection(
            req,
            rows,
            keys,
            "dimensionValues",
            f"companies({company['id']})/dimensions({dimension['id']})/dimensionValues",
            extra=lambda d: d["dimensionId"] == dimension["id"],
        )

    def _list_users(self, req: Request):
        company = self._company(req)  # users are tenant-wide; the company only has to exist
        rows, keys = self._rows("users", "")
        return self._collection(
            req,
            rows,
            keys,
            "users",
            f"companies({company['id']})/users",
            view=lambda d: {k: v for k, v in public(d).items() if k != "id"},
        )

    def _list_budgets(self, req: Request):
        company = self._company(req)
        rows, keys = self._rows("budgetEntries", company["id"])
        return self._collection(req, rows, keys, "budgetEntries", f"companies({company['id']})/budgetEntries")

    # --- handlers: purchase orders -------------------------------------------------------------
    def _create_order(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            try:
                data = rules.validate_new_order(
                    req.json(),
                    self._ledger(cid),
                    today=self.today.isoformat(),
                    exists=lambda number: (cid, number) in self._orders,
                )
            except BcError:
                self.count("purchaseOrders.rejected")
                raise
            number = data["number"]
            if not number:  # no manual number: the company's number series
                company = self._docs[("companies", "")][cid]  # fresh: a parallel write may have moved a counter
                seq = company.get("_seqOrder", 0)
                while not number or (cid, number) in self._orders:
                    seq += 1
                    number = f"PO{108000 + seq}"
                self._save("companies", {**company, "_seqOrder": seq})
            order_id = stable_guid("bc", self.seed, "purchaseOrder", company["name"], number)
            lines = [
                order_line(
                    line_id=stable_guid("bc", self.seed, "purchaseOrderLine", order_id, ln["sequence"]),
                    order_id=order_id,
                    sequence=ln["sequence"],
                    account=ln["account"],
                    description=ln["description"],
                    quantity=ln["quantity"],
                    unit_cost=ln["unitCost"],
                    expected=ln["expected"] or data["orderDate"],
                    cost_center=ln["shortcutDimension1Code"],
                    project=ln["shortcutDimension2Code"],
                )
                for ln in data["lines"]
            ]
            doc = purchase_order(
                order_id=order_id,
                number=number,
                vendor=data["vendor"],
                order_date=data["orderDate"],
                currency=data["currencyCode"],
                purchaser=data["purchaser"],
                lines=lines,
                company_id=cid,
            )
            doc["postingDate"] = data["postingDate"]
            self._save("purchaseOrders", stamp(doc, self.clock.now()))
            self.count("purchaseOrders.created")
        location = f"http://{req.headers.get('Host', 'localhost')}{req.path}({order_id})"
        body = {
            "@odata.context": self._context(req, f"companies({cid})/purchaseOrders/$entity"),
            **self._view(req, "purchaseOrders")(doc),
        }
        return 201, body, {"Location": location}

    # --- handlers: purchase invoices -----------------------------------------------------------
    def _settle(self) -> None:
        """Invoices posted more than ``pay_after`` seconds ago are paid (lazily, when someone looks)."""
        if not self._open:
            return
        now = time.time()
        with self.lock:
            for inv_id, (cid, posted_at) in list(self._open.items()):
                if now - posted_at < self.pay_after:
                    continue
                doc = self._docs.get(("purchaseInvoices", cid), {}).get(inv_id)
                vendor = next(
                    (
                        v
                        for v in self._docs.get(("vendors", cid), {}).values()
                        if doc and v["number"] == doc["vendorNumber"]
                    ),
                    None,
                )
                if vendor and vendor["blocked"] in ("Payment", "All"):
                    continue  # a blocked vendor is not paid; it is, once unblocked
                del self._open[inv_id]
                if doc is None or doc["status"] != "Open":
                    continue
                self._save("purchaseInvoices", stamp({**doc, "status": "Paid"}, self.clock.now()))
                self.count("purchaseInvoices.paid")
                # The payment was the invoice net of its credit memos: they are closed with it.
                for memo in list(self._docs.get(("purchaseCreditMemos", cid), {}).values()):
                    if memo["invoiceId"] == inv_id and memo["status"] == "Open":
                        self._save("purchaseCreditMemos", stamp({**memo, "status": "Paid"}, self.clock.now()))

    def _create_invoice(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            try:
                data = rules.validate_new_invoice(
                    req.json(),
                    self._ledger(cid),
                    today=self.today.isoformat(),
                    duplicate=lambda vendor, vin: self._vin.get((cid, vendor, vin)),
                    order_named=lambda number: self._docs.get(("purchaseOrders", cid), {}).get(
                        self._orders.get((cid, number), "")
                    ),
                )
            except BcError:
                self.count("purchaseInvoices.rejected")
                raise
            # Read the counter under the lock: the dict fetched before it may be stale, and two drafts
            # with one number would share an id (the second silently replacing the first).
            company = self._docs[("companies", "")][cid]
            seq = company["_seqDraft"] + 1
            self._save("companies", {**company, "_seqDraft": seq})
            invoice_id = stable_guid("bc", self.seed, "purchaseInvoice", company["name"], seq)
            ledger = self._ledger(cid)
            doc = rules.build_invoice(
                data,
                invoice_id=invoice_id,
                number=f"PI-{107000 + seq}",
                company_id=cid,
                line_id=lambda n: stable_guid("bc", self.seed, "purchaseInvoiceLine", invoice_id, n),
                dimension_ids={code: d["id"] for code, d in ledger.dimensions.items()},
                value_ids=ledger.dim_values,
            )
            self._save("purchaseInvoices", stamp(doc, self.clock.now()))
            self.count("purchaseInvoices.created")
        location = f"http://{req.headers.get('Host', 'localhost')}{req.path}({invoice_id})"
        body = {
            "@odata.context": self._context(req, f"companies({cid})/purchaseInvoices/$entity"),
            **self._view(req, "purchaseInvoices")(doc),
        }
        return 201, body, {"Location": location}

    def _patch_invoice(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            doc = self._find("purchaseInvoices", cid, req.match["key"])
            if_match = req.headers.get("If-Match")
            if not if_match:
                raise BcError(
                    400,
                    "BadRequest_InvalidToken",
                    "Could not validate the client concurrency token required by the service. Please "
                    "provide a valid token in the client request.",
                )
            if if_match != "*" and if_match != doc["@odata.etag"]:
                raise BcError(409, "Request_EntityChanged", "Another user has already changed the record.")
            if doc["status"] != "Draft":
                raise rules.dialog(f"You cannot change Purchase Invoice {doc['number']} because it has been posted.")
            body = req.json()
            if not isinstance(body, dict):
                raise BcError(400, "BadRequest", "Invalid Request Body")
            patch = {}
            for key, value in body.items():
                if key in ("postingDate", "invoiceDate", "dueDate"):
                    patch[key] = rules.check_date(value)
                elif key == "vendorInvoiceNumber":
                    vin = rules.check_text(value, rules.MAX_VENDOR_INVOICE_NO)
                    other = self._vin.get((cid, doc["vendorNumber"], vin))
                    if vin and other and other != doc["id"]:
                        raise rules.dialog(f"Purchase Invoice {vin} already exists for this vendor.")
                    patch[key] = vin
                elif key in rules.HEADER_READ_ONLY:
                    raise BcError(400, "BadRequest_InvalidOperation", f"Control '{key}' is read-only.")
                else:
                    raise rules.unknown_property(key, "purchaseInvoice")
            if "vendorInvoiceNumber" in patch:
                self._vin.pop((cid, doc["vendorNumber"], doc["vendorInvoiceNumber"]), None)
            new = self._save("purchaseInvoices", stamp({**doc, **patch}, self.clock.now()))
        return {"@odata.context": self._context(req, f"companies({cid})/purchaseInvoices/$entity"), **public(new)}

    def _post_invoice(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            doc = self._find("purchaseInvoices", cid, req.match["key"])

            def duplicate_posted(vendor: str, vin: str) -> bool:
                other = self._docs[("purchaseInvoices", cid)].get(self._vin.get((cid, vendor, vin), ""))
                return bool(other and other["id"] != doc["id"] and other["status"] in ("Open", "Paid"))

            try:
                rules.check_postable(doc, self._ledger(cid), duplicate_posted=duplicate_posted)
            except BcError:
                self.count("purchaseInvoices.rejected")
                raise
            company = self._docs[("companies", "")][cid]  # fresh, as in _create_invoice
            seq = company["_seqPosted"] + 1
            self._save("companies", {**company, "_seqPosted": seq})
            posted_at = time.time()
            self._save(
                "purchaseInvoices",
                stamp(
                    {
                        **doc,
                        "number": f"PPI-{108000 + seq}",
                        "status": "Open",
                        "_draftNumber": doc["number"],
                        "_postedAt": posted_at,
                    },
                    self.clock.now(),
                ),
            )
            self.count("purchaseInvoices.posted")
            order = self._docs.get(("purchaseOrders", cid), {}).get(doc.get("orderId") or ZERO_GUID)
            if order is not None:
                self._save(
                    "purchaseOrders", stamp(order_totals(rules.invoice_order_lines(order, doc)), self.clock.now())
                )
        return 204, b""  # an empty body: a 204 must not carry one (keep-alive would be corrupted)

    # --- handlers: purchase credit memos -------------------------------------------------------
    def _balances(self, cid: str) -> dict[str, Decimal]:
        with self.lock:
            invoices = list(self._docs.get(("purchaseInvoices", cid), {}).values())
            memos = list(self._docs.get(("purchaseCreditMemos", cid), {}).values())
        return credit_memos.vendor_balances(invoices, memos)

    def _posted_invoice(self, cid: str, inv_id: str, inv_no: str) -> dict | None:
        invoices = self._docs.get(("purchaseInvoices", cid), {})
        if inv_id:
            return invoices.get(inv_id)
        return next((d for d in invoices.values() if d["number"] == inv_no), None)

    def _create_credit_memo(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            self._settle()  # an invoice paid by now is paid before a credit memo is applied to it
            try:
                data = credit_memos.validate_new(
                    req.json(),
                    self._ledger(cid),
                    today=self.today.isoformat(),
                    duplicate=lambda vendor, vcm: self._vcm.get((cid, vendor, vcm)),
                    invoice=lambda inv_id, inv_no: self._posted_invoice(cid, inv_id, inv_no),
                )
            except BcError:
                self.count("purchaseCreditMemos.rejected")
                raise
            company = self._docs[("companies", "")][cid]  # fresh, as in _create_invoice
            seq = company.get("_seqCreditDraft", 0) + 1
            self._save("companies", {**company, "_seqCreditDraft": seq})
            memo_id = stable_guid("bc", self.seed, "purchaseCreditMemo", company["name"], seq)
            ledger = self._ledger(cid)
            doc = credit_memos.build(
                data,
                memo_id=memo_id,
                number=f"PCM-{104000 + seq}",
                company_id=cid,
                line_id=lambda n: stable_guid("bc", self.seed, "purchaseCreditMemoLine", memo_id, n),
                dimension_ids={code: d["id"] for code, d in ledger.dimensions.items()},
                value_ids=ledger.dim_values,
            )
            self._save("purchaseCreditMemos", stamp(doc, self.clock.now()))
            self.count("purchaseCreditMemos.created")
        location = f"http://{req.headers.get('Host', 'localhost')}{req.path}({memo_id})"
        body = {
            "@odata.context": self._context(req, f"companies({cid})/purchaseCreditMemos/$entity"),
            **self._view(req, "purchaseCreditMemos")(doc),
        }
        return 201, body, {"Location": location}

    def _post_credit_memo(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            doc = self._find("purchaseCreditMemos", cid, req.match["key"])

            def duplicate_posted(vendor: str, vcm: str) -> bool:
                other = self._docs[("purchaseCreditMemos", cid)].get(self._vcm.get((cid, vendor, vcm), ""))
                return bool(other and other["id"] != doc["id"] and other["status"] in credit_memos.POSTED)

            try:
                credit_memos.check_postable(doc, self._ledger(cid), duplicate_posted=duplicate_posted)
            except BcError:
                self.count("purchaseCreditMemos.rejected")
                raise
            company = self._docs[("companies", "")][cid]
            seq = company.get("_seqCreditPosted", 0) + 1
            self._save("companies", {**company, "_seqCreditPosted": seq})
            self._save(
                "purchaseCreditMemos",
                stamp(
                    {**doc, "number": f"PPCM-{109000 + seq}", "status": "Open", "_draftNumber": doc["number"]},
                    self.clock.now(),
                ),
            )
            self.count("purchaseCreditMemos.posted")
        return 204, b""

    def _list_lines(self, req: Request):
        coll, nav = req.match["set"], req.match["nav"]
        if LINES[coll] != nav:
            self._unknown_segment(req)
        company = self._company(req)
        if coll in SETTLED:
            self._settle()
        doc = self._find(coll, company["id"], req.match["key"])
        lines = sorted(doc["_lines"], key=lambda ln: ln["id"])
        return self._collection(
            req, lines, [ln["id"] for ln in lines], nav, f"companies({company['id']})/{coll}({doc['id']})/{nav}"
        )

    def _list_line_dimensions(self, req: Request):
        company = self._company(req)
        doc = self._find("purchaseInvoices", company["id"], req.match["key"])
        line_id = self._guid(req.match["line"])
        line = next((ln for ln in doc["_lines"] if ln["id"] == line_id), None)
        if line is None:
            raise BcError(
                404,
                "Internal_RecordNotFound",
                f"The Purch. Inv. Line Aggregate does not exist. Identification fields and values: "
                f"Id='{{{line_id.upper()}}}'",
            )
        return {"@odata.context": self._context(req, "dimensionSetLines"), "value": list(line["_dims"])}

    # --- sandbox controls ----------------------------------------------------------------------
    def _touch(self, req: Request):
        """Modify ``count`` records of a stream (rename + new timestamp) and add ``add`` new ones.

        Body: ``{"stream": "employees", "count": 2, "add": 1, "company": "NW-US", "ids": [...],
        "set": {"status": "Terminated"}}``; all but ``stream`` are optional.
        """
        body = req.json() or {}
        stream = body.get("stream")
        if stream not in TOUCHABLE:
            raise HttpError(
                400, {"error": {"code": "BadRequest", "message": f"stream must be one of {sorted(TOUCHABLE)}"}}
            )
        coll, code_field, name_field = TOUCHABLE[stream]
        companies = sorted(self._docs.get(("companies", ""), {}).values(), key=lambda c: c["name"])
        if body.get("company"):
            companies = [c for c in companies if c["name"] == body["company"]]
        changes = {k: v for k, v in (body.get("set") or {}).items() if k not in ("id", "@odata.etag", "_company")}
        touched, added = [], []
        with self.lock:
            candidates = [
                (c, d)
                for c in companies
                for d in sorted(self._docs.get((coll, c["id"]), {}).values(), key=lambda d: str(d[code_field]))
                if stream != "cost_centers" or d.get("dimensionCode") == DEPARTMENT
            ]
            if body.get("ids"):
                wanted = {str(i).lower() for i in body["ids"]}
                candidates = [(c, d) for c, d in candidates if d["id"] in wanted]
            else:
                candidates = candidates[: int(body.get("count", 1))]
            for company, doc in candidates:
                new = {**doc, **changes}
                if name_field and name_field not in changes:
                    rev = int(doc.get("_rev", 0)) + 1
                    new[name_field] = REV_SUFFIX.sub("", str(doc[name_field])) + f" (rev {rev})"
                    new["_rev"] = rev
                self._save(coll, stamp(new, self.clock.now()))
                touched.append({"id": new["id"], "entity": company["name"], "code": new.get(code_field)})
            for k in range(int(body.get("add", 0))):
                company = companies[k % len(companies)] if companies else None
                if company is None:
                    break
                new = self._new_record(stream, company)
                self._save(coll, stamp(new, self.clock.now()))
                added.append({"id": new["id"], "entity": company["name"], "code": new.get(code_field)})
        self.count(f"touch.{stream}", len(touched) + len(added))
        return {"stream": stream, "touched": touched, "added": added}

    def _new_record(self, stream: str, company: dict) -> dict:
        coll, code_field, name_field = TOUCHABLE[stream]
        cid = company["id"]
        rows = [
            d
            for d in self._docs.get((coll, cid), {}).values()
            if stream != "cost_centers" or d.get("dimensionCode") == DEPARTMENT
        ]
        if not rows or stream in ("purchase_invoices", "legal_entities", "suppliers", "purchase_orders", "budgets"):
            raise HttpError(400, {"error": {"code": "BadRequest", "message": f"cannot add records to {stream}"}})
        n = len(rows) + 1
        template = {k: v for k, v in max(rows, key=lambda d: str(d[code_field])).items() if k != "_rev"}
        if stream == "accounting_periods":
            last = date.fromisoformat(template["startingDate"])
            start = date(last.year + last.month // 12, last.month % 12 + 1, 1)
            code = start.isoformat()
            extra = {"name": f"{start:%B %Y}", "newFiscalYear": start.month == 1, "closed": False, "dateLocked": False}
        else:
            code = {
                "cost_centers": f"NEW{n}",
                "employees": f"E9{n:03d}",
                "gl_accounts": f"87{n:02d}",
                "tax_codes": f"NEWTAX{n}",
                "projects": f"PRJ-NEW{n}",
                "payment_terms": f"{n * 5}D",
                "currencies": f"X{n:02d}",
            }[stream]
            label = "currency" if stream == "currencies" else stream.replace("_", " ").rstrip("s")
            extra = {name_field: f"New {label} {n}", "_blocked": False}
            if stream == "employees":
                extra.update(
                    status="Active",
                    email=f"new.hire.{code.lower()}@northwind.example",
                    givenName="New",
                    surname=f"Hire {n}",
                    terminationDate="0001-01-01",
                )
            if stream == "gl_accounts":
                extra.update(blocked=False, category="Expense", accountType="Posting", directPosting=True)
            if stream == "payment_terms":
                extra.update(dueDateCalculation=code, discountDateCalculation="", discountPercent=0)
        doc = {**template, **extra, code_field: code, "id": stable_guid("bc", self.seed, "added", coll, cid, code)}
        if stream == "projects":  # a project is also a PROJECT dimension value, so lines can carry it
            dim = next(d for d in self._docs[("dimensions", cid)].values() if d["code"] == PROJECT)
            self._save(
                "dimensionValues",
                stamp(
                    {
                        "id": stable_guid("bc", self.seed, "added", "dimensionValues", cid, code),
                        "code": code,
                        "dimensionId": dim["id"],
                        "dimensionCode": PROJECT,
                        "displayName": doc["displayName"],
                        "consolidationCode": "",
                        "_company": cid,
                        "_blocked": False,
                    },
                    self.clock.now(),
                ),
            )
        return doc

    def _drift(self, req: Request):
        """Plant drift an incremental read cannot see: nothing here moves ``lastModifiedDateTime``.

        Body (every list optional)::

            {"add": [{"stream": "cost_centers", "entity": "NW-US", "code": "NEWCC", "name": "..."}],
             "change": [{"stream": "gl_accounts", "entity": "NW-DE", "code": "6110", "field": "name", "value": "..."}],
             "delete": [{"stream": "employees", "entity": "NW-FR", "code": "E0003"}]}

        ``field`` is a canonical field (``name``, ``blocked``, ``amount``...) or a BC property; values
        are BC's (``"Inactive"``, ``"Payment"``). Budgets name ``cost_center``, ``gl_account`` and
        ``period`` instead of ``code`` (``amount`` too when added). An added record is dated like the
        oldest row of its set, as if it had always been there (a back-dated import). Everything is
        checked before anything changes: one bad item and nothing is planted.
        """
        body = req.json() or {}
        if not isinstance(body, dict):
            raise self._bad("body must be a JSON object")
        with self.lock:
            self._drift_sets: dict[tuple[str, str], tuple[dict[str, list[dict]], dict | None]] = {}
            try:
                adds = [self._drift_new(item) for item in self._items(body, "add")]
                changes = [self._drift_change(item) for item in self._items(body, "change")]
                deletes = [
                    (self._drift_coll(item, delete=True), self._drift_target(item)[1], item)
                    for item in self._items(body, "delete")
                ]
            finally:
                self._drift_sets = {}
            seen = set()
            for coll, doc, item in [*((c, docs[0], i) for c, docs, i in adds), *changes, *deletes]:
                if (coll, doc["id"]) in seen:
                    raise self._bad(f"{item} names a record already named in this request")
                seen.add((coll, doc["id"]))
            out: dict[str, list] = {"added": [], "changed": [], "deleted": []}
            with self.store.lock:  # one commit for the lot: thousands of planted records stay quick
                for coll, docs, item in adds:
                    for doc in docs:
                        self._index(coll, self.store.put(coll, doc["id"], doc, commit=False))
                    out["added"].append(self._drift_echo(item, docs[0]))
                for coll, doc, item in changes:
                    # No stamp(): the same lastModifiedDateTime and ETag as before.
                    self._index(coll, self.store.put(coll, doc["id"], doc, commit=False))
                    out["changed"].append(self._drift_echo(item, doc))
                for coll, doc, item in deletes:
                    self._remove(coll, doc)
                    out["deleted"].append(self._drift_echo(item, doc))
                self.store.db.commit()
        for kind, done in out.items():
            if done:
                self.count(f"drift.{kind}", len(done))
        return out

    @staticmethod
    def _bad(message: str) -> HttpError:
        return HttpError(400, {"error": {"code": "BadRequest", "message": message}})

    def _items(self, body: dict, kind: str) -> list[dict]:
        items = body.get(kind) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise self._bad(f"{kind} must be a list of objects")
        return items

    @staticmethod
    def _drift_echo(item: dict, doc: dict) -> dict:
        keys = ("code",) if item["stream"] != "budgets" else ("cost_center", "gl_account", "period")
        return {
            "stream": item["stream"],
            "entity": item.get("entity"),
            **{k: item.get(k) for k in keys},
            "id": doc["id"],
        }

    def _drift_coll(self, item: dict, *, delete: bool = False) -> str:
        stream = item.get("stream")
        if stream not in DRIFT_FIELDS:
            raise self._bad(f"stream must be one of {sorted(DRIFT_FIELDS)}")
        if stream == "legal_entities":
            if delete:
                raise self._bad("companies cannot be deleted here")
            return "companies"
        return TOUCHABLE[stream][0]

    def _drift_company(self, item: dict) -> dict:
        company = next(
            (c for c in self._docs.get(("companies", ""), {}).values() if c["name"] == item.get("entity")), None
        )
        if company is None:
            raise self._bad(f"no company named {item.get('entity')!r}")
        return company

    def _drift_set(self, stream: str, cid: str) -> tuple[dict[str, list[dict]], dict | None]:
        """(natural key -> records, the oldest record) of one stream of one company, once per request."""
        cached = self._drift_sets.get((stream, cid))
        if cached is None:
            index: dict[str, list[dict]] = {}
            oldest = None
            for d in self._docs.get((TOUCHABLE[stream][0], cid), {}).values():
                if stream == "cost_centers" and d.get("dimensionCode") != DEPARTMENT:
                    continue
                index.setdefault(self._drift_key(stream, d), []).append(d)
                if oldest is None or d["lastModifiedDateTime"] < oldest["lastModifiedDateTime"]:
                    oldest = d
            cached = self._drift_sets[(stream, cid)] = (index, oldest)
        return cached

    @staticmethod
    def _drift_key(stream: str, doc: dict, *, item: bool = False) -> str:
        """A record's natural key as the workbench sees it (``item``: as a /sandbox/drift item names it)."""
        if stream == "budgets":
            names = ("cost_center", "gl_account", "period") if item else ("costCenterCode", "accountNumber", "period")
            return "|".join(str(doc.get(k)) for k in names)
        code = str(doc.get("code" if item else TOUCHABLE[stream][1]))
        # The workbench's period code is the month; BC keys periods by their starting date.
        return code[:7] if stream == "accounting_periods" else code

    def _drift_target(self, item: dict) -> tuple[dict, dict]:
        """(company, the stored record the item names)."""
        stream = item.get("stream")
        self._drift_coll(item)
        company = self._drift_company(item)
        if stream == "legal_entities":
            return company, company
        found = self._drift_set(stream, company["id"])[0].get(self._drift_key(stream, item, item=True), [])
        if len(found) != 1:
            raise self._bad(f"{stream}: {len(found)} records match {item}")
        return company, found[0]

    def _drift_property(self, stream: str, field: Any, doc: dict) -> str:
        prop = DRIFT_FIELDS[stream].get(field, field)
        if (
            not isinstance(prop, str)
            or prop not in doc
            or prop.startswith(("_", "@"))
            or prop in ("id", "lastModifiedDateTime")
        ):
            raise self._bad(f"{stream} has no field {field!r} that can be changed")
        return prop

    def _drift_change(self, item: dict) -> tuple[str, dict, dict]:
        coll = self._drift_coll(item)
        _, doc = self._drift_target(item)
        prop = self._drift_property(item["stream"], item.get("field"), doc)
        value = item.get("value")
        if item["stream"] == "suppliers" and prop == "blocked" and not value:
            value = " "  # BC's "not blocked"
        return coll, {**doc, prop: value}, item

    def _drift_new(self, item: dict) -> tuple[str, list[dict], dict]:
        stream = item.get("stream")
        coll = self._drift_coll(item)
        if stream not in DRIFT_ADDABLE:
            raise self._bad(f"cannot add records to {stream}; addable: {', '.join(DRIFT_ADDABLE)}")
        company = self._drift_company(item)
        cid = company["id"]
        index, first = self._drift_set(stream, cid)
        if first is None:
            raise self._bad(f"{company['name']} has no {stream} to model a new one on")
        if self._drift_key(stream, item, item=True) in index:
            raise self._bad(f"{stream}: {item} exists already")
        oldest = first["lastModifiedDateTime"]
        template = {k: v for k, v in first.items() if k != "_rev"}
        if stream == "budgets":
            key = (str(item.get("cost_center")), str(item.get("gl_account")), str(item.get("period")))
            doc = {
                **template,
                "costCenterCode": key[0],
                "accountNumber": key[1],
                "period": key[2],
                "amount": item.get("amount", 0),
                "id": stable_guid("bc", self.seed, "drift", coll, cid, *key),
            }
            return coll, [stamp(doc, oldest)], item
        code_field, name_field = TOUCHABLE[stream][1], TOUCHABLE[stream][2]
        code = str(item.get("code") or "")
        if not code:
            raise self._bad(f"{stream}: a new record needs a code")
        doc = {
            **template,
            code_field: code,
            name_field: str(item.get("name") or f"Planted {code}"),
            "_blocked": False,
            "id": stable_guid("bc", self.seed, "drift", coll, cid, code),
        }
        if stream == "employees":
            doc.update(
                email=f"{code.lower()}@{company['name'].lower()}.northwind.example",
                status="Active",
                givenName="",
                surname="",
                terminationDate="0001-01-01",
            )
        if stream == "gl_accounts":
            doc.update(blocked=False, accountType="Posting", directPosting=True)
        if stream == "suppliers":
            doc.update(
                blocked=" ",
                taxRegistrationNumber="",
                systemCreatedAt=oldest,
                systemModifiedAt=oldest,
                systemCreatedBy=ZERO_GUID,
                systemModifiedBy=ZERO_GUID,
            )
        for field, value in item.items():
            if field not in ("stream", "entity", "code", "name"):
                prop = self._drift_property(stream, field, doc)
                doc[prop] = " " if stream == "suppliers" and prop == "blocked" and not value else value
        docs = [stamp(doc, oldest)]
        if stream == "projects":  # a project is also a PROJECT dimension value, so lines can carry it
            dim = next(d for d in self._docs[("dimensions", cid)].values() if d["code"] == PROJECT)
            docs.append(
                stamp(
                    {
                        "id": stable_guid("bc", self.seed, "drift", "dimensionValues", cid, code),
                        "code": code,
                        "dimensionId": dim["id"],
                        "dimensionCode": PROJECT,
                        "displayName": doc["displayName"],
                        "consolidationCode": "",
                        "_company": cid,
                        "_blocked": False,
                    },
                    oldest,
                )
            )
        return coll, docs, item

    def _posted_drift(self, req: Request):
        """Plant posted-document drift: the ERP loses a posted purchase invoice, cancels it, or holds
        another total (an import, a restore), without a new ``lastModifiedDateTime``.

        Body (every list optional; an invoice is named by ``id`` or by its posted ``number``)::

            {"delete": [{"id": "..."}], "cancel": [{"number": "PPI-108001"}],
             "change": [{"id": "...", "total": "123.45"}]}

        Everything is checked before anything changes.
        """
        body = req.json() or {}
        if not isinstance(body, dict):
            raise self._bad("body must be a JSON object")
        with self.lock:
            found = {
                kind: [(self._posted_drift_target(i), i) for i in self._items(body, kind)] for kind in POSTED_DRIFT
            }
            changes = []
            for doc, item in found["change"]:
                try:
                    total = float(str(item.get("total")))
                except ValueError:
                    raise self._bad(f"total {item.get('total')!r} is not a number") from None
                if total != total or abs(total) >= 1e15:
                    raise self._bad(f"total {item.get('total')!r} is out of range")
                # As if its lines were changed: the net total moves with the gross (the tax stays).
                tax = float(str(doc.get("totalTaxAmount") or 0))
                changes.append({**doc, "totalAmountIncludingTax": total, "totalAmountExcludingTax": total - tax})
            out: dict[str, list] = {"deleted": [], "canceled": [], "changed": []}
            with self.store.lock:
                for doc, _ in found["delete"]:
                    self._remove("purchaseInvoices", doc)
                    self._open.pop(doc["id"], None)
                    out["deleted"].append(doc["id"])
                for doc, _ in found["cancel"]:
                    self._open.pop(doc["id"], None)
                    self._index(
                        "purchaseInvoices",
                        self.store.put("purchaseInvoices", doc["id"], {**doc, "status": "Canceled"}, commit=False),
                    )
                    out["canceled"].append(doc["id"])
                for doc in changes:
                    self._index("purchaseInvoices", self.store.put("purchaseInvoices", doc["id"], doc, commit=False))
                    out["changed"].append(doc["id"])
                self.store.db.commit()
        for kind, done in out.items():
            if done:
                self.count(f"posted_drift.{kind}", len(done))
        return out

    def _posted_drift_target(self, item: dict) -> dict:
        """The posted purchase invoice an item names, by ``id`` or ``number``."""
        ident, number = str(item.get("id") or "").strip("{}").lower(), str(item.get("number") or "")
        if not ident and not number:
            raise self._bad("name an invoice by id or number")
        for (coll, _), docs in self._docs.items():
            if coll != "purchaseInvoices":
                continue
            for doc in docs.values():
                if (ident and doc["id"].lower() == ident) or (number and doc.get("number") == number):
                    if doc.get("status") not in ("Open", "Paid"):
                        raise self._bad(f"invoice {ident or number} is not posted")
                    return doc
        raise self._bad(f"no purchase invoice {ident or number}")

    def _remove(self, coll: str, doc: dict) -> None:
        """Delete a record from the API (the kit's Store has no delete: its memory and file, here).
        The caller commits."""
        cid = doc.get("_company", "")
        with self.lock, self.store.lock:
            self.store.data.get(coll, {}).pop(doc["id"], None)
            self.store.db.execute("DELETE FROM docs WHERE coll = ? AND id = ?", (coll, doc["id"]))
            self._docs.get((coll, cid), {}).pop(doc["id"], None)
            self._sorted.pop((coll, cid), None)
            if coll == "purchaseInvoices":  # gone from every index, or a re-post would meet a ghost duplicate
                self._open.pop(doc["id"], None)
                key = (cid, doc.get("vendorNumber"), doc.get("vendorInvoiceNumber"))
                if self._vin.get(key) == doc["id"]:
                    del self._vin[key]

    def _console(self, req: Request) -> str:
        """A page a person can look at: companies and the latest purchase invoices."""
        esc = html.escape
        with self.lock:
            companies = {c["id"]: c for c in self._docs.get(("companies", ""), {}).values()}
            invoices = sorted(
                (d for (coll, _), docs in self._docs.items() if coll == "purchaseInvoices" for d in docs.values()),
                key=lambda d: d["lastModifiedDateTime"],
                reverse=True,
            )[:200]
        rows = "".join(
            f"<tr><td>{esc(companies.get(d['_company'], {}).get('name', '?'))}</td><td>{esc(str(d['number']))}</td>"
            f"<td>{esc(str(d['status']))}</td><td>{esc(str(d['vendorNumber']))} {esc(str(d['vendorName']))}</td>"
            f"<td>{esc(str(d['vendorInvoiceNumber']))}</td><td>{esc(str(d['postingDate']))}</td>"
            f"<td style='text-align:right'>{esc(str(d['totalAmountIncludingTax']))} {esc(str(d['currencyCode']))}</td>"
            f"<td>{esc(str(d['lastModifiedDateTime']))}</td></tr>"
            for d in invoices
        )
        company_list = "".join(
            f"<li>{esc(c['name'])} — {esc(c['displayName'])} ({esc(c['_currency'])})</li>"
            for c in sorted(companies.values(), key=lambda c: c["name"])
        )
        stats = esc(", ".join(f"{k}={v}" for k, v in sorted(self.stats.items())) or "none yet")
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Business Central sandbox</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.9rem}</style></head><body>"
            f"<h1>Business Central sandbox</h1><p>Today: {esc(self.today.isoformat())}. Counters: {stats}.</p>"
            f"<h2>Companies</h2><ul>{company_list}</ul>"
            f"<h2>Purchase invoices (latest {len(invoices)})</h2><table><tr><th>Company</th><th>No.</th>"
            "<th>Status</th><th>Vendor</th><th>Vendor invoice no.</th><th>Posting date</th><th>Total</th>"
            f"<th>Last modified</th></tr>{rows}</table></body></html>"
        )
