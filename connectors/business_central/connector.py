"""Business Central (API v2.0) connector: master data and procure-to-pay documents in; expense reports
and supplier invoices out as posted purchase invoices, purchase orders out with our PO number.

Reads are per company and incremental on ``lastModifiedDateTime`` (inclusive ``ge``: the caller
dedupes by external_id). A company's cursor only moves once all its pages are read, because BC pages
by key, not by time: moving it after page one could skip older changes still on page two. Pages
follow ``@odata.nextLink`` on the connection's own origin only (a link to another host is
``MalformedPayload``: the bearer token is never sent there).

Supplier credit notes go out as purchase credit memos (``post_credit_note``), applied to the posted
invoice they correct and idempotent the same way by ``vendorCreditMemoNumber`` and vendor.

Writes are idempotent by the document number (our external document number, BC's
``vendorInvoiceNumber``): it is looked up before anything is created, so a resend after a timeout
finds the first attempt instead of booking a second invoice. Purchase orders are idempotent the same
way by their number (manual numbering: BC keeps ours). Accrual journals are idempotent by their
document number: G/L entries carrying it mean the journal is posted.

Besides the standard API, two more APIs of the same environment are read: the automation API's
``users`` (to turn a vendor's ``systemModifiedBy`` into an email) and the custom API page
``northwind/finance/v1.0`` that publishes ``budgetEntries``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from connectors.base import (
    CheckResult,
    ConfigError,
    ConfigReader,
    ConnectorError,
    MalformedPayload,
    Page,
    RecordError,
    Rejected,
    StreamSpec,
    TransientError,
    WriteOp,
    WriteResult,
)
from connectors.http import HttpClient, same_origin, timeouts

from . import mapping
from .mapping import MappingError

log = logging.getLogger(__name__)

DEFAULT_SCOPE = "https://api.businesscentral.dynamics.com/.default"
CURSOR = "lastModifiedDateTime"
STREAMS = {
    # Three companies: a full read each time is cheaper than tracking them (cursor_field None).
    "legal_entities": StreamSpec("legal_entities", "legal_entity"),
    "cost_centers": StreamSpec("cost_centers", "cost_center", cursor_field=CURSOR),
    "gl_accounts": StreamSpec("gl_accounts", "gl_account", cursor_field=CURSOR),
    "tax_codes": StreamSpec("tax_codes", "tax_code", cursor_field=CURSOR),
    "accounting_periods": StreamSpec("accounting_periods", "accounting_period", cursor_field=CURSOR),
    "employees": StreamSpec("employees", "employee", cursor_field=CURSOR),
    "projects": StreamSpec("projects", "project", cursor_field=CURSOR),
    "payment_terms": StreamSpec("payment_terms", "payment_term", cursor_field=CURSOR),
    "currencies": StreamSpec("currencies", "currency", cursor_field=CURSOR),
    "purchase_invoices": StreamSpec("purchase_invoices", "erp_document", cursor_field=CURSOR),
    "suppliers": StreamSpec("suppliers", "supplier", cursor_field=CURSOR),
    "purchase_orders": StreamSpec("purchase_orders", "purchase_order", cursor_field=CURSOR),
    "budgets": StreamSpec("budgets", "budget", cursor_field=CURSOR),
    # A document stream (the posted-document reconciliation reads it), not master data.
    "purchase_credit_memos": StreamSpec("purchase_credit_memos", "erp_credit_memo", cursor_field=CURSOR),
    # Not master data: what the ERP booked, read to prove our journals are there.
    "gl_entries": StreamSpec("gl_entries", "gl_entry", cursor_field=CURSOR),
}
ENTITY_SETS = {
    "gl_accounts": "accounts",
    "tax_codes": "taxGroups",
    "employees": "employees",
    "projects": "projects",
    "payment_terms": "paymentTerms",
    "currencies": "currencies",
    "purchase_invoices": "purchaseInvoices",
    "suppliers": "vendors",
    "purchase_orders": "purchaseOrders",
    "purchase_credit_memos": "purchaseCreditMemos",
    "gl_entries": "generalLedgerEntries",
}
EXPAND = {"purchase_orders": "purchaseOrderLines"}  # lines come with their order: one request per page
AUTOMATION_API = "microsoft/automation/v2.0"
BUDGET_API = "northwind/finance/v1.0"  # our custom API page (publisher/group/version)
COST_CENTER_DIMENSION = "DEPARTMENT"
POSTED = ("Open", "Paid")
CORRELATION = re.compile(r"\s*CorrelationId:\s*[0-9A-Fa-f-]+\.?\s*$")


def parse_error(body: Any) -> tuple[str, str]:
    """BC's ``{"error": {"code", "message"}}``, without the trailing CorrelationId noise."""
    err = body["error"]
    return str(err.get("code", "")), CORRELATION.sub("", str(err.get("message", ""))).strip()


def _later(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return a or b
    return a if mapping.parse_timestamp(a) >= mapping.parse_timestamp(b) else b


class BusinessCentralConnector:
    kind = "business_central"

    def __init__(self, config: dict[str, Any]):
        cfg = ConfigReader(self.kind, config)
        base_url = cfg.url("base_url")
        client_id, client_secret = cfg.text("client_id"), cfg.text("client_secret")
        self.environment = cfg.text("environment", "sandbox")
        tenant = cfg.text("tenant", "")  # the real service: /v2.0/{tenant}/{environment}/api/v2.0
        self.page_size = cfg.positive_int("page_size", 200)
        timeout = cfg.timeout()
        # An explicitly empty scope sends none; an absent one asks for BC's default.
        scope = "" if config.get("scope") == "" else cfg.text("scope", DEFAULT_SCOPE)
        prefix = f"{quote(tenant)}/" if tenant else ""
        self.api_root = f"{base_url}/v2.0/{prefix}{quote(self.environment)}/api"
        self.http = HttpClient(
            f"{self.api_root}/v2.0",
            token_url=cfg.url("token_url", f"{base_url}/oauth2/v2.0/token"),
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            error_parser=parse_error,
            timeout=timeouts(timeout),
        )
        self._companies: list[dict] | None = None
        self._currencies: dict[str, str] = {}  # company id -> local currency
        self._dimensions: dict[tuple[str, str], str | None] = {}  # (company id, code) -> dimension id
        self._user_emails: dict[str, dict[str, str]] = {}  # company id -> {user security id: email}
        self._payment_term_codes: dict[str, dict[str, str]] = {}  # company id -> {payment term id: code}

    # --- contract --------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        try:
            companies = self._load_companies(refresh=True)
        except ConfigError as exc:
            return CheckResult(False, f"Business Central refused the credentials: {exc}")
        except TransientError as exc:
            return CheckResult(False, f"Business Central is unreachable or busy: {exc}")
        except ConnectorError as exc:
            return CheckResult(False, f"Business Central answered unexpectedly ({exc.__class__.__name__}): {exc}")
        if not companies:
            return CheckResult(False, f"Connected to environment '{self.environment}', but no company is visible")
        names = ", ".join(c["name"] for c in companies)
        return CheckResult(True, f"Connected to environment '{self.environment}': {len(companies)} companies ({names})")

    def discover(self) -> list[StreamSpec]:
        return list(STREAMS.values())

    def read(self, stream: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if stream not in STREAMS:
            raise ConfigError(f"business_central has no stream {stream!r}; known: {', '.join(STREAMS)}")
        if stream == "legal_entities":
            yield from self._read_legal_entities()
            return
        state = self._check_cursor(cursor)
        for company in self._load_companies():
            if stream == "accounting_periods":
                yield from self._read_periods(company, state)
            else:
                yield from self._read_company(stream, company, state)

    def write(self, op: WriteOp, *, idempotency_key: str) -> WriteResult:
        if op.action == "post_accrual_journal":
            return self._post_journal(op.payload or {}, {"Idempotency-Key": idempotency_key})
        builders = {
            "post_expense_report": mapping.purchase_invoice_body,
            "post_supplier_invoice": mapping.supplier_invoice_body,
            "create_purchase_order": mapping.purchase_order_body,
            "post_credit_note": mapping.credit_memo_body,
        }
        if op.action not in builders:
            raise ConfigError(f"business_central cannot {op.action!r}; it supports {', '.join(builders)}")
        payload = op.payload or {}
        try:
            body = builders[op.action](payload)
        except MappingError as exc:
            raise Rejected("Workbench_InvalidPayload", str(exc)) from exc
        company = self._company_named(str(payload.get("entity") or ""))
        # BC ignores the header; it is sent so the request can be traced in logs and proxies.
        headers = {"Idempotency-Key": idempotency_key}
        if op.action == "create_purchase_order":
            return self._create_order(company, body, headers)
        if op.action == "post_credit_note":
            return self._post_credit_memo(company, body, headers)
        # Our expense document numbers are unique across vendors; suppliers' invoice numbers are not.
        return self._post_invoice(op.action, company, body, headers, own_numbers=op.action == "post_expense_report")

    def _post_invoice(self, action: str, company: dict, body: dict, headers: dict, *, own_numbers: bool) -> WriteResult:
        invoices = f"companies({company['id']})/purchaseInvoices"
        doc_no, vendor = body["vendorInvoiceNumber"], body["vendorNumber"]
        log.info("business_central %s %s (%s, key %s)", action, doc_no, company["name"], headers["Idempotency-Key"])
        return self._create_and_post(
            docs=invoices,
            body=body,
            headers=headers,
            find=lambda: self._find_invoice(invoices, doc_no, vendor, exclusive=own_numbers),
            result=lambda doc, already: self._result(doc, company, already=already),
            culprits=CULPRITS if own_numbers else P2P_CULPRITS,
            noun="invoice",
            canceled=lambda doc: (
                f"Purchase invoice {doc.get('number')} for {doc_no} was canceled in Business "
                "Central; send the report again as a new version."
            ),
        )

    def _post_credit_memo(self, company: dict, body: dict, headers: dict) -> WriteResult:
        memos = f"companies({company['id']})/purchaseCreditMemos"
        doc_no, vendor = body["vendorCreditMemoNumber"], body["vendorNumber"]
        log.info(
            "business_central post_credit_note %s (%s, key %s)", doc_no, company["name"], headers["Idempotency-Key"]
        )
        return self._create_and_post(
            docs=memos,
            body=body,
            headers=headers,
            find=lambda: self._find_credit_memo(memos, doc_no, vendor),
            result=lambda doc, already: self._credit_memo_result(doc, company, already=already),
            culprits=CREDIT_CULPRITS,
            noun="credit memo",
            canceled=lambda doc: (
                f"Purchase credit memo {doc.get('number')} for {doc_no} was canceled in Business Central."
            ),
        )

    def _create_and_post(
        self,
        *,
        docs: str,
        body: dict,
        headers: dict,
        find: Callable[[], dict | None],
        result: Callable[[dict, bool], WriteResult],
        culprits: list,
        noun: str,
        canceled: Callable[[dict], str],
    ) -> WriteResult:
        """One posted purchase document (invoice or credit memo), whatever became of earlier attempts.

        It is looked up by our number before anything is created, so a resend after a lost answer
        finds the first attempt; it is posted only if not posted yet; and once BC has accepted a change,
        any later failure is an uncertain outcome (the next attempt looks it up again).
        """
        changed = False
        try:
            doc = find()
            resent = doc is not None
            if doc is None:
                try:
                    doc = self._object(self.http.request("POST", docs, json_body=body, headers=headers))
                except Rejected as exc:
                    # An earlier attempt whose answer was lost created it meanwhile: use that one.
                    found = find() if "already exists" in exc.message else None
                    if found is None:
                        raise
                    doc, resent = found, True
                changed = True
            status = doc.get("status")
            if status not in POSTED:
                if status == "Canceled":
                    raise Rejected("Workbench_DocumentCanceled", canceled(doc))
                try:
                    self.http.request("POST", f"{docs}({doc['id']})/Microsoft.NAV.post", headers=headers)
                except Rejected:
                    # A parallel attempt may have posted it a moment ago: that is success, not a refusal.
                    again = find()
                    if again is None or again.get("status") not in POSTED:
                        raise
                    return result(again, True)
                changed = True
                doc = self._object(self.http.request("GET", f"{docs}({doc['id']})"))
                if doc.get("status") not in POSTED:
                    raise MalformedPayload(
                        f"{noun} {doc.get('id')} reports status {doc.get('status')!r} after a successful post"
                    )
        except TransientError as exc:
            if changed and not exc.uncertain:
                raise TransientError(str(exc), retry_after=exc.retry_after, uncertain=True) from exc
            raise
        except Rejected as exc:
            raise _with_culprit(exc, culprits) from None
        return result(doc, resent and status in POSTED)

    def _find_credit_memo(self, memos: str, doc_no: str, vendor: str) -> dict | None:
        """The credit memo already carrying this vendor credit memo number for this vendor, posted first."""
        query = f"vendorCreditMemoNumber eq {mapping.odata_string(doc_no)} and vendorNumber eq {mapping.odata_string(vendor)}"
        found = [
            r
            for page, _ in self._pages(memos, {"$filter": query})
            for r in page
            if isinstance(r, dict)
            and r.get("vendorCreditMemoNumber") == doc_no
            and r.get("vendorNumber") == vendor
            and isinstance(r.get("id"), str)
        ]
        return next((r for r in found if r.get("status") in POSTED), found[0] if found else None)

    def _credit_memo_result(self, memo: dict, company: dict, *, already: bool) -> WriteResult:
        number = str(memo.get("number") or "")
        posting_date = str(memo.get("postingDate") or "")
        if not number or not posting_date:
            raise MalformedPayload(f"posted credit memo {memo.get('id')} has no number or posting date")
        applied = str(memo.get("invoiceNumber") or "")
        return WriteResult(
            external_id=memo["id"],
            status="posted",
            message=f"{'Already posted' if already else 'Posted'} as credit memo {number} in {company['name']}"
            + (f", applied to invoice {applied}" if applied else ""),
            data={
                "number": number,
                "fiscal_year": mapping.fiscal_year(posting_date),
                "posting_date": posting_date,
                "entity": company["name"],
                "invoice_number": applied,
            },
        )

    def _create_order(self, company: dict, body: dict, headers: dict) -> WriteResult:
        orders = f"companies({company['id']})/purchaseOrders"
        number, vendor = body["number"], body["vendorNumber"]
        log.info(
            "business_central create_purchase_order %s (%s, key %s)",
            number,
            company["name"],
            headers["Idempotency-Key"],
        )
        try:
            order = self._find_order(orders, number, vendor)
            if order is not None:
                return self._order_result(order, company, already=True)
            try:
                order = self._object(self.http.request("POST", orders, json_body=body, headers=headers))
            except Rejected as exc:
                # An earlier attempt whose answer was lost created it meanwhile: use that one.
                found = self._find_order(orders, number, vendor) if "already exists" in exc.message else None
                if found is None:
                    raise
                return self._order_result(found, company, already=True)
        except Rejected as exc:
            raise _with_culprit(exc, P2P_CULPRITS) from None
        return self._order_result(order, company, already=False)

    # --- accrual journals ------------------------------------------------------------------------
    def _post_journal(self, payload: dict, headers: dict) -> WriteResult:
        """Post one journal document: idempotent by its document number. G/L entries carrying it mean
        it is posted (the same result again); lines of an attempt that never posted are replaced."""
        try:
            lines = mapping.journal_lines_body(payload)
        except MappingError as exc:
            raise Rejected("Workbench_InvalidPayload", str(exc)) from exc
        company = self._company_named(str(payload.get("entity") or ""))
        base = f"companies({company['id']})"
        doc_no = str(payload["document_number"])
        by_number = {"$filter": f"documentNumber eq {mapping.odata_string(doc_no)}"}
        log.info(
            "business_central post_accrual_journal %s (%s, key %s)", doc_no, company["name"], headers["Idempotency-Key"]
        )

        def entries() -> list[dict]:
            return [
                r
                for page, _ in self._pages(f"{base}/generalLedgerEntries", by_number)
                for r in page
                if isinstance(r, dict) and r.get("documentNumber") == doc_no
            ]

        changed = False  # once BC has accepted a change, any later failure leaves the outcome uncertain
        try:
            posted = entries()
            if posted:
                return self._journal_result(posted, payload, company, already=True)
            journal = self._journal_named(company, str(payload["journal"]))
            lines_path = f"{base}/journals({journal['id']})/journalLines"
            self._delete_journal_lines(lines_path, by_number, doc_no)
            try:
                for body in lines:
                    self._object(self.http.request("POST", lines_path, json_body=body, headers=headers))
                    changed = True
                self._journal_holds_only(lines_path, by_number, doc_no)
                self.http.request("POST", f"{base}/journals({journal['id']})/Microsoft.NAV.post", headers=headers)
            except Rejected:
                posted = entries()  # a parallel attempt may have posted it a moment ago
                if posted:
                    return self._journal_result(posted, payload, company, already=True)
                self._delete_journal_lines(lines_path, by_number, doc_no)  # leave no half-written journal
                raise
            changed = True
            posted = entries()
            if not posted:
                raise MalformedPayload(f"journal {doc_no}: posted, but Business Central shows no G/L entries for it")
        except TransientError as exc:
            if changed and not exc.uncertain:
                raise TransientError(str(exc), retry_after=exc.retry_after, uncertain=True) from exc
            raise
        except Rejected as exc:
            raise _with_culprit(exc, JOURNAL_CULPRITS) from None
        return self._journal_result(posted, payload, company, already=False)

    def _journal_named(self, company: dict, code: str) -> dict:
        params = {"$filter": f"code eq {mapping.odata_string(code)}"}
        rows = [r for page, _ in self._pages(f"companies({company['id']})/journals", params) for r in page]
        found = next(
            (r for r in rows if isinstance(r, dict) and r.get("code") == code and isinstance(r.get("id"), str)), None
        )
        if found is None:
            raise Rejected(
                "Internal_RecordNotFound",
                f"The Gen. Journal Batch does not exist. Identification fields and values: "
                f"Journal Template Name='GENERAL',Name='{code}'",
            )
        return found

    def _journal_holds_only(self, lines_path: str, by_number: dict, doc_no: str) -> None:
        """Posting books every line of the journal: never post while it holds another document's lines
        (a parallel attempt still writing, or one that died): refused, naming them, so a person decides."""
        others = sorted(
            {
                str(r.get("documentNumber"))
                for page, _ in self._pages(lines_path)
                for r in page
                if isinstance(r, dict) and r.get("documentNumber") != doc_no
            }
        )
        if others:
            raise Rejected(
                "Workbench_JournalNotEmpty",
                f"The journal also holds unposted lines of {', '.join(others[:5])}; posting {doc_no} now would "
                "book them too. Post again once they are posted or deleted in Business Central.",
            )

    def _delete_journal_lines(self, lines_path: str, by_number: dict, doc_no: str) -> None:
        leftovers = [
            r
            for page, _ in self._pages(lines_path, by_number)
            for r in page
            if isinstance(r, dict) and r.get("documentNumber") == doc_no and isinstance(r.get("id"), str)
        ]
        for line in leftovers:
            self.http.request("DELETE", f"{lines_path}({line['id']})")

    @staticmethod
    def _journal_result(entries: list[dict], payload: dict, company: dict, *, already: bool) -> WriteResult:
        try:
            debit = sum((mapping.money(e, "debitAmount") for e in entries), start=Decimal(0))
            dates = {mapping.day(e, "postingDate") for e in entries}
        except MappingError as exc:
            raise MalformedPayload(f"G/L entries of journal {payload['document_number']}: {exc}") from None
        doc_no = str(payload["document_number"])
        posting_date = min(dates) if dates else str(payload["posting_date"])
        return WriteResult(
            external_id=doc_no,
            status="posted",
            message=f"{'Already posted' if already else 'Posted'} as journal {doc_no} in {company['name']} "
            f"({len(entries)} G/L entries)",
            data={
                "number": doc_no,
                "posting_date": posting_date,
                "entity": company["name"],
                "entries": len(entries),
                "debit": debit,
            },
        )

    # --- reading ---------------------------------------------------------------------------------
    def _pages(self, path: str, params: dict | None = None) -> Iterator[tuple[list, bool]]:
        """(rows, is_last_page) for each page, following ``@odata.nextLink`` on our own origin only."""
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        url: str | None = path
        seen: set[str] = set()
        while url:
            body = self.http.json_of(self.http.request("GET", url, params=params, headers=headers))
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise MalformedPayload(f"GET {url}: expected an OData collection with a 'value' list")
            next_link = body.get("@odata.nextLink")
            if next_link is not None:
                # Checked before this page is yielded: a link to elsewhere stops the read, not just the paging.
                next_link = same_origin(self.http.base_url, next_link, what=f"GET {url}: @odata.nextLink")
                if next_link in seen:
                    raise MalformedPayload(f"GET {url}: repeating @odata.nextLink {next_link!r}")
            yield body["value"], next_link is None
            if next_link:
                seen.add(next_link)
            url, params = next_link, None  # the nextLink carries the whole query

    def _read_company(self, stream: str, company: dict, state: dict[str, str]) -> Iterator[Page]:
        path = self._stream_path(stream, company)
        if path is None:
            return
        since = state.get(company["name"])
        params = {"$filter": f"{CURSOR} ge {since}"} if since else {}
        if stream in EXPAND:
            params["$expand"] = EXPAND[stream]
        mapper = self._mapper(stream, company)
        newest = since
        for rows, last in self._pages(path, params):
            records, errors = [], []
            for raw in rows:
                newest = _later(newest, self._stamp_of(raw))
                self._map_into(records, errors, stream, raw, mapper)
            changed = last and newest != state.get(company["name"])
            if changed and newest:
                state[company["name"]] = newest
            if records or errors or changed:
                yield Page(records, dict(state), errors)

    def _read_periods(self, company: dict, state: dict[str, str]) -> Iterator[Page]:
        # BC periods have only a starting date; each ends the day before the next starts, so all of a
        # company's periods are read (a few dozen rows) and filtered here rather than by the server.
        rows = [raw for page, _ in self._pages(f"companies({company['id']})/accountingPeriods") for raw in page]
        since = state.get(company["name"])
        starts = sorted(
            {r["startingDate"] for r in rows if isinstance(r, dict) and isinstance(r.get("startingDate"), str)}
        )
        records: list[dict] = []
        errors: list[RecordError] = []
        newest = since
        for raw in rows:
            stamp = self._stamp_of(raw)
            if since and stamp and _later(stamp, since) != stamp:
                continue  # older than the cursor: unchanged since the last read
            newest = _later(newest, stamp)
            start = raw.get("startingDate") if isinstance(raw, dict) else None
            following = next((s for s in starts if isinstance(start, str) and s > start), None)
            self._map_into(
                records,
                errors,
                "accounting_periods",
                raw,
                lambda r, nxt=following: mapping.accounting_period(r, company["name"], nxt),
            )
        changed = newest != state.get(company["name"])
        if changed and newest:
            state[company["name"]] = newest
        if records or errors or changed:
            yield Page(records, dict(state), errors)

    def _read_legal_entities(self) -> Iterator[Page]:
        records: list[dict] = []
        errors: list[RecordError] = []
        for company in self._load_companies(refresh=True):
            info_rows = [r for page, _ in self._pages(f"companies({company['id']})/companyInformation") for r in page]
            info = info_rows[0] if info_rows else {}
            self._map_into(
                records,
                errors,
                "legal_entities",
                company["raw"],
                lambda raw, info=info: mapping.legal_entity(raw, info),
            )
            if isinstance(info, dict) and isinstance(info.get("currencyCode"), str):
                self._currencies[company["id"]] = info["currencyCode"]
        yield Page(records, None, errors)

    @staticmethod
    def _map_into(records: list, errors: list, stream: str, raw: Any, mapper: Callable[[Any], dict]) -> None:
        try:
            records.append(mapper(raw))
        except MappingError as exc:
            ext_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            errors.append(RecordError(ext_id, f"{stream}: {exc}", mapping.raw_excerpt(raw)))

    @staticmethod
    def _stamp_of(raw: Any) -> str | None:
        """The row's lastModifiedDateTime if readable: even a row that fails mapping moves the
        cursor, since it is quarantined as a RecordError rather than lost."""
        try:
            return mapping.timestamp(raw) if isinstance(raw, dict) else None
        except MappingError:
            return None

    def _stream_path(self, stream: str, company: dict) -> str | None:
        base = f"companies({company['id']})"
        if stream == "cost_centers":
            dim_id = self._dimension_id(company, COST_CENTER_DIMENSION)
            return f"{base}/dimensions({dim_id})/dimensionValues" if dim_id else None
        if stream == "budgets":
            return f"{self.api_root}/{BUDGET_API}/{base}/budgetEntries"
        return f"{base}/{ENTITY_SETS[stream]}"

    def _mapper(self, stream: str, company: dict) -> Callable[[Any], dict]:
        entity = company["name"]
        if stream == "purchase_invoices":
            currency = self._currency(company)
            return lambda raw: mapping.erp_document(raw, entity, currency)
        if stream == "purchase_orders":
            currency = self._currency(company)
            return lambda raw: mapping.purchase_order(raw, entity, currency)
        if stream == "purchase_credit_memos":
            currency = self._currency(company)
            return lambda raw: mapping.credit_memo(raw, entity, currency)
        if stream == "suppliers":
            currency, emails, terms = self._currency(company), self._users(company), self._term_codes(company)
            return lambda raw: mapping.supplier(raw, entity, currency, emails, terms)
        if stream == "budgets":
            return lambda raw: mapping.budget(raw, entity)
        if stream == "gl_entries":
            return lambda raw: mapping.gl_entry(raw, entity)
        fn = {
            "cost_centers": mapping.cost_center,
            "gl_accounts": mapping.gl_account,
            "tax_codes": mapping.tax_code,
            "employees": mapping.employee,
            "projects": mapping.project,
            "payment_terms": mapping.payment_term,
            "currencies": mapping.currency,
        }[stream]
        return lambda raw: fn(raw, entity)

    @staticmethod
    def _check_cursor(cursor: dict[str, Any] | None) -> dict[str, str]:
        state: dict[str, str] = {}
        for company, value in (cursor or {}).items():
            try:
                mapping.parse_timestamp(str(value))
            except ValueError:
                raise ConfigError(f"cursor for {company!r} is not a timestamp: {value!r}") from None
            state[str(company)] = str(value)
        return state

    # --- companies and their setup -------------------------------------------------------------
    def _load_companies(self, *, refresh: bool = False) -> list[dict]:
        if self._companies is None or refresh:
            companies = []
            for rows, _ in self._pages("companies"):
                for raw in rows:
                    if not (
                        isinstance(raw, dict) and isinstance(raw.get("id"), str) and isinstance(raw.get("name"), str)
                    ):
                        raise MalformedPayload(
                            f"companies: a company without id or name: {mapping.raw_excerpt(raw, 300)}"
                        )
                    companies.append({"id": raw["id"], "name": raw["name"], "raw": raw})
            self._companies = sorted(companies, key=lambda c: c["name"])
        return self._companies

    def _company_named(self, name: str) -> dict:
        for refresh in (False, True):
            for company in self._load_companies(refresh=refresh):
                if company["name"] == name:
                    return company
        raise Rejected(
            "Internal_CompanyNotFound",
            f"Company '{name}' does not exist in Business Central environment '{self.environment}'.",
        )

    def _currency(self, company: dict) -> str:
        if company["id"] not in self._currencies:
            rows = [r for page, _ in self._pages(f"companies({company['id']})/companyInformation") for r in page]
            code = rows[0].get("currencyCode") if rows and isinstance(rows[0], dict) else None
            self._currencies[company["id"]] = code if isinstance(code, str) else ""
        return self._currencies[company["id"]]

    def _users(self, company: dict) -> dict[str, str]:
        """User security id -> email (contactEmail, else the user name if it is one), once per company
        and connector: users change rarely, and a vendor's changer must not cost a request per row."""
        if company["id"] not in self._user_emails:
            emails = {}
            for rows, _ in self._pages(f"{self.api_root}/{AUTOMATION_API}/companies({company['id']})/users"):
                for raw in rows:
                    if not isinstance(raw, dict) or not isinstance(raw.get("userSecurityId"), str):
                        continue
                    email = raw.get("contactEmail") or raw.get("authenticationEmail") or raw.get("userName")
                    if isinstance(email, str) and "@" in email:
                        emails[raw["userSecurityId"].lower()] = email
            self._user_emails[company["id"]] = emails
        return self._user_emails[company["id"]]

    def _term_codes(self, company: dict) -> dict[str, str]:
        """Payment term id (lower case) -> code, once per company and connector: a vendor names its
        terms by id, and the workbench looks terms up by code."""
        if company["id"] not in self._payment_term_codes:
            codes = {}
            for rows, _ in self._pages(f"companies({company['id']})/{ENTITY_SETS['payment_terms']}"):
                for raw in rows:
                    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and isinstance(raw.get("code"), str):
                        codes[raw["id"].lower()] = raw["code"]
            self._payment_term_codes[company["id"]] = codes
        return self._payment_term_codes[company["id"]]

    def _dimension_id(self, company: dict, code: str) -> str | None:
        key = (company["id"], code)
        if key not in self._dimensions:
            params = {"$filter": f"code eq {mapping.odata_string(code)}"}
            rows = [r for page, _ in self._pages(f"companies({company['id']})/dimensions", params) for r in page]
            found = next((r.get("id") for r in rows if isinstance(r, dict) and r.get("code") == code), None)
            self._dimensions[key] = found if isinstance(found, str) else None
            if found is None:
                log.warning("business_central: company %s has no %s dimension", company["name"], code)
        return self._dimensions[key]

    # --- writing ---------------------------------------------------------------------------------
    def _object(self, resp) -> dict:
        body = self.http.json_of(resp)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise MalformedPayload(
                f"{resp.request.method} {resp.url}: expected a document with an id, got "
                f"{mapping.raw_excerpt(body, 300)}"
            )
        return body

    def _find_invoice(self, invoices: str, doc_no: str, vendor: str, *, exclusive: bool = True) -> dict | None:
        """The invoice already carrying this document number, preferring a posted one. ``exclusive``:
        the number is ours, so finding it on another vendor's invoice is a refusal, not a miss."""
        query = f"vendorInvoiceNumber eq {mapping.odata_string(doc_no)}"
        if not exclusive:
            query += f" and vendorNumber eq {mapping.odata_string(vendor)}"
        found = [
            r
            for page, _ in self._pages(invoices, {"$filter": query})
            for r in page
            if isinstance(r, dict) and r.get("vendorInvoiceNumber") == doc_no and isinstance(r.get("id"), str)
        ]
        if not found:
            return None
        mine = [r for r in found if r.get("vendorNumber") == vendor]
        if not mine:
            other = found[0]
            raise Rejected(
                "Workbench_DocumentNumberInUse",
                f"Vendor invoice number {doc_no} is already used by purchase invoice {other.get('number')} "
                f"of vendor {other.get('vendorNumber')}, not {vendor}.",
            )
        return next((r for r in mine if r.get("status") in POSTED), mine[0])

    def _find_order(self, orders: str, number: str, vendor: str) -> dict | None:
        params = {"$filter": f"number eq {mapping.odata_string(number)}"}
        found = next(
            (
                r
                for page, _ in self._pages(orders, params)
                for r in page
                if isinstance(r, dict) and r.get("number") == number and isinstance(r.get("id"), str)
            ),
            None,
        )
        if found is not None and found.get("vendorNumber") != vendor:
            raise Rejected(
                "Workbench_DocumentNumberInUse",
                f"Purchase order number {number} is already used by an order of vendor "
                f"{found.get('vendorNumber')}, not {vendor}.",
                field="number",
                value=number,
            )
        return found

    @staticmethod
    def _order_result(order: dict, company: dict, *, already: bool) -> WriteResult:
        status = str(order.get("status") or "").strip().lower()
        try:
            total = mapping.money(order, "totalAmountExcludingTax")
        except MappingError as exc:
            raise MalformedPayload(f"purchase order {order.get('id')}: {exc}") from None
        return WriteResult(
            external_id=order["id"],
            status=mapping.ORDER_STATUS.get(status, status),
            message=f"{'Already created' if already else 'Created'} as {order.get('number')} in {company['name']}",
            data={"number": str(order.get("number") or ""), "total": total, "entity": company["name"]},
        )

    def _result(self, invoice: dict, company: dict, *, already: bool) -> WriteResult:
        number = str(invoice.get("number") or "")
        posting_date = str(invoice.get("postingDate") or "")
        if not number or not posting_date:
            raise MalformedPayload(f"posted invoice {invoice.get('id')} has no number or posting date")
        return WriteResult(
            external_id=invoice["id"],
            status="posted",
            message=f"{'Already posted' if already else 'Posted'} as {number} in {company['name']}",
            data={
                "number": number,
                "fiscal_year": mapping.fiscal_year(posting_date),
                "posting_date": posting_date,
                "entity": company["name"],
            },
        )


# BC's words -> the payload field they name. Expense reports act on a blocked department (sync
# deactivates that cost center) and name a refused G/L account; P2P writes name every culprit BC's
# message reveals.
ACCOUNT_REFUSED = (re.compile(r"in G/L Account: No\.=(?P<value>[^.\s]+)"), "account")
CULPRITS = [(re.compile(r"Dimension Value DEPARTMENT - (?P<value>\S+) is blocked"), "cost_center"), ACCOUNT_REFUSED]
P2P_CULPRITS = [
    *CULPRITS,
    (re.compile(r"Dimension Value DEPARTMENT - (?P<value>\S+) does not exist"), "cost_center"),
    (re.compile(r"Dimension Value PROJECT - (?P<value>\S+) (?:is blocked|does not exist)"), "project"),
    (re.compile(r"Vendor (?P<value>\S+) is blocked with type"), "vendor_number"),
    (
        re.compile(r"Buy-from Vendor No\. of table Purchase Header contains a value \((?P<value>[^)]*)\)"),
        "vendor_number",
    ),
    (re.compile(r"field No\. of table Purchase Line contains a value \((?P<value>[^)]*)\)"), "account"),
    (re.compile(r"Tax Group Code of table Purchase Line contains a value \((?P<value>[^)]*)\)"), "tax_code"),
    (re.compile(r"Purchase Header does not exist.*No\.='(?P<value>[^']*)'"), "order_number"),
    (re.compile(r"Purchase Order (?P<value>\S+) is for vendor"), "order_number"),
]

JOURNAL_CULPRITS = [
    *P2P_CULPRITS,
    (re.compile(r"Account No\. of table Gen\. Journal Line contains a value \((?P<value>[^)]*)\)"), "account"),
    (re.compile(r"for G/L Account (?P<value>\S+?)\.?$"), "account"),
]


CREDIT_CULPRITS = [
    *P2P_CULPRITS,
    (re.compile(r"Purch\. Inv\. Header does not exist.*No\.='(?P<value>[^']*)'"), "invoice_number"),
    (re.compile(r"Purchase Invoice (?P<value>\S+) is for vendor"), "invoice_number"),
]


def _with_culprit(exc: Rejected, culprits=CULPRITS) -> Rejected:
    """Name the field BC objected to, where its words say which (a blocked department = cost center)."""
    if exc.field:
        return exc
    for pattern, field in culprits:
        m = pattern.search(exc.message)
        if m:
            return Rejected(exc.code, exc.message, field=field, value=m.group("value").rstrip(".").strip("'"))
    return exc
