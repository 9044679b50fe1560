"""A sandbox of SAP Concur's Financial Integration Service (FIS) v4, plus a minimal Expense v4 read.

API routes (bearer token from ``POST /oauth2/v0/token``, client credentials):

- ``GET  /fi/v4/companies/transactiontypes/{docType}/transactions`` -- the queue. ``docType`` is
  ``expense`` (the only type this sandbox has). Query: ``page`` (0-based), ``limit`` (default 25,
  max 100), ``docId``, ``ignoreDocumentStatus`` (``true``: every document whatever its status).
  Answers ``{"links": [first, self, next, last], "content": [...], "page": {...}}``; by default
  only documents not yet acknowledged (``docStatus`` READY), oldest first. The
  ``documentFormatAs`` header is ignored: documents are always JSON objects.
- ``POST .../transactions/acknowledgements`` ``{"ids": [...]}`` -> one result per id.
  **Sandbox choice:** re-acknowledging an already acknowledged document answers ``SUCCESS``
  again (idempotent), where real FIS answers code 101 ``FAILURE`` "This document was previously
  acknowledged". The connector treats both as success. An unknown id is code 116 FAILURE.
- ``POST .../transactions/postingconfirmations`` (``postingConfirmations[]``: ``docId``,
  ``overallPostingStatusCode`` success/error, ``postingDocs[]``, ``systemMessages[]``) -> one
  result per confirmation. A repeated confirmation succeeds again (the latest one wins); an
  unknown document is code 116 "This document does not exist.". A confirmation may arrive for a
  document still READY (an ERP that posts before acknowledging): it leaves the queue too.
- ``POST .../transactions/paymentconfirmations`` (``processingConfirmation[]``: ``docId``,
  ``processingStatusCode`` CP/PP/RE/OB, ``clearingDetails[]``) -> one result per confirmation;
  the same confirmation sent twice is recorded once.
- ``GET  /expensereports/v4/users/{userId}/context/{TRAVELER|MANAGER|PROCESSOR}/reports/{reportId}``
  -> the report (ReportForm fields) with ``postingStatus``, ``erpDocumentNumber``,
  ``erpPostingDocuments``, ``postingMessages`` (sandbox additions mirroring what Concur shows
  after FIS posting confirmations) and ``paymentStatus`` / ``paymentConfirmedAmount``.

Sandbox routes (no auth): ``GET /`` (HTML console), ``GET /sandbox/reports/{reportId or docId}``,
``POST /sandbox/touch {"stream": "expense_reports", "count": n, "description": optional}`` (n new
approved READY reports, deterministic from the seed; ``description`` overrides every line's
description), ``POST /sandbox/redeliver {"doc_ids": [...]}`` (acknowledged/posted documents go back
to READY with the same content and version, as when Concur re-sends a report), plus the kit's
``/sandbox/health``, ``/sandbox/faults``, ``/sandbox/stats``.

State lives in the kit's Store (SQLite when ``data_path`` is set): ``fis`` (docId -> seq, the
transaction, a report summary), ``state`` (docId -> status, confirmations...; only for documents
that were touched) and ``meta``. The READY queue is an in-memory sorted list of sequence numbers,
so a page is a slice, not a scan of every document.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import threading
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from math import ceil
from typing import Any
from urllib.parse import urlencode

from connectors.sandboxkit.kit import HttpError, Request, Sandbox, dumps
from connectors.sandboxkit.world import Employee, build_world

from . import console
from .documents import expense_v4_report, new_report, summary, transaction

FIS = r"/fi/v4/companies/transactiontypes/(?P<docType>[^/]+)/transactions"
READY, ACKNOWLEDGED, POSTED, FAILED = "READY", "ACKNOWLEDGED", "POSTED", "FAILED"
DOES_NOT_EXIST = (116, "This document does not exist.")
PAYMENT_CODES = {"CP", "PP", "RE", "OB"}  # completely paid, partially paid, rejected, obsolete
CONSOLE_PAGE = 100


def _today(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)) if value else date.today()


class ConcurSandbox(Sandbox):
    name = "concur"
    token_path = "/oauth2/v0/token"

    def __init__(self, *, data_path: str | None = None, seed: int = 42, faults: dict | None = None, **options: Any):
        # Indexes over the Store; built before the base class seeds (seed_store fills them).
        self.lock = threading.RLock()
        self._order: list[str] = []  # docIds; position == the document's seq
        self._ready: list[int] = []  # sorted seqs of READY documents: the queue
        self._by_report: dict[str, str] = {}  # reportId -> docId
        self._employees: list[Employee] | None = None
        super().__init__(data_path=data_path, seed=seed, faults=faults, **options)
        self._index()

    # --- setup, seed, indexes ---------------------------------------------------------------
    def setup(self) -> None:
        self.route("GET", FIS, self._list)
        self.route("POST", FIS + r"/acknowledgements", self._acknowledge)
        self.route("POST", FIS + r"/postingconfirmations", self._posting_confirmations)
        self.route("POST", FIS + r"/paymentconfirmations", self._payment_confirmations)
        self.route(
            "GET",
            r"/expensereports/v4/users/(?P<user>[^/]+)/context/(?P<ctx>[^/]+)/reports/(?P<report>[^/]+)",
            self._expense_report,
        )
        self.route("GET", r"/", self._console, auth=False)
        self.route("GET", r"/sandbox/reports/(?P<id>[^/]+)", self._sandbox_report, auth=False)
        self.route("POST", r"/sandbox/touch", self._touch, auth=False)
        self.route("POST", r"/sandbox/redeliver", self._redeliver, auth=False)

    @property
    def today(self) -> date:
        return _today(self.options.get("today"))

    def _world_args(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "today": self.today,
            "n_employees": int(self.options.get("n_employees") or 200),
            "n_lines": int(self.options.get("n_lines") or 2000),
        }

    def seed_store(self) -> None:
        # Millions of small long-lived dicts and no garbage: the cyclic GC would rescan them again
        # and again while they are built. Pause it, then collect once now, so that the one full
        # pass happens here rather than in the middle of the first API requests.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            world = build_world(**self._world_args())
            self._employees = world.employees
            self.store.put_many(
                "fis",
                {
                    r.doc_id: {"seq": i, "item": transaction(r), "summary": summary(r, self.seed)}
                    for i, r in enumerate(world.reports)
                },
            )
        finally:
            if was_enabled:
                gc.collect()
                gc.enable()

    def _index(self) -> None:
        docs = self.store.data.get("fis", {})
        states = self.store.data.get("state", {})
        ordered = sorted(docs.items(), key=lambda kv: kv[1]["seq"])
        with self.lock:
            self._order = [doc_id for doc_id, _ in ordered]
            self._by_report = {wrap["summary"]["reportId"]: doc_id for doc_id, wrap in ordered}
            self._ready = [
                wrap["seq"] for doc_id, wrap in ordered if states.get(doc_id, {}).get("status", READY) == READY
            ]

    def employees(self) -> list[Employee]:
        if self._employees is None:
            # Employees depend on (seed, n_employees) only: a world without reports is cheap.
            self._employees = build_world(**{**self._world_args(), "n_lines": 0}).employees
        return self._employees

    # --- state helpers ----------------------------------------------------------------------
    def _wrap(self, doc_id: str) -> dict | None:
        return self.store.get("fis", doc_id)

    def _state(self, doc_id: str) -> dict[str, Any]:
        return dict(self.store.get("state", doc_id) or {"status": READY})

    def _leave_queue(self, doc_id: str) -> None:
        seq = self.store.get("fis", doc_id)["seq"]
        i = bisect.bisect_left(self._ready, seq)
        if i < len(self._ready) and self._ready[i] == seq:
            del self._ready[i]

    def _set_status(self, doc_id: str, st: dict[str, Any], status: str) -> None:
        if st.get("status", READY) == READY and status != READY:
            self._leave_queue(doc_id)
        elif st.get("status", READY) != READY and status == READY:
            bisect.insort(self._ready, self.store.get("fis", doc_id)["seq"])
        st["status"] = status

    def error_body(self, status: int, code: str, message: str) -> Any:
        # Concur v4's ErrorMessage shape.
        return {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "httpStatus": f"{status} {HTTPStatus(status).phrase}",
            "errorId": code,
            "errorMessage": message,
        }

    def _bad_request(self, message: str) -> HttpError:
        return HttpError(400, self.error_body(400, "BadRequest", message))

    def _body(self, req: Request, key: str) -> tuple[dict, list]:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise self._bad_request(f"The request body must be an object with a '{key}' array.")
        return body, body[key]

    def _check_doc_type(self, req: Request) -> None:
        doc_type = req.match["docType"]
        if doc_type != "expense":
            raise self._bad_request(f"docType '{doc_type}' is not available in this sandbox (only 'expense').")

    def _int(self, req: Request, name: str, default: int, minimum: int) -> int:
        raw = req.query.get(name, "")
        try:
            value = int(raw) if raw != "" else default
        except ValueError:
            raise self._bad_request(f"Query parameter '{name}' must be an integer, not '{raw}'.") from None
        if value < minimum:
            raise self._bad_request(f"Query parameter '{name}' must be at least {minimum}.")
        return value

    # --- FIS: the queue ---------------------------------------------------------------------
    def _list(self, req: Request):
        self._check_doc_type(req)
        page = self._int(req, "page", 0, 0)
        limit = min(100, self._int(req, "limit", 25, 1))
        ignore_status = req.query.get("ignoreDocumentStatus", "").lower() == "true"
        doc_id = req.query.get("docId")
        with self.lock:
            if doc_id:
                wrap = self._wrap(doc_id)
                ok = wrap is not None and (ignore_status or self._state(doc_id)["status"] == READY)
                total, page_ids = (1, [doc_id] if page == 0 else []) if ok else (0, [])
            elif ignore_status:
                total, page_ids = len(self._order), self._order[page * limit : (page + 1) * limit]
            else:
                total = len(self._ready)
                page_ids = [self._order[s] for s in self._ready[page * limit : (page + 1) * limit]]
            content = []
            for d in page_ids:
                item = self._wrap(d)["item"]
                content.append(
                    {
                        **{k: v for k, v in item.items() if k != "links"},
                        "docStatus": self._state(d)["status"],
                        "links": item.get("links", []),
                    }
                )
        pages = ceil(total / limit)
        extra = {k: req.query[k] for k in ("docId", "ignoreDocumentStatus") if k in req.query}
        base = f"http://{req.headers.get('Host', '127.0.0.1')}{req.path}"

        def link(rel: str, p: int) -> dict:
            return {
                "rel": rel,
                "href": f"{base}?{urlencode({'limit': limit, 'page': p, **extra})}",
                "hreflang": None,
                "media": None,
                "title": None,
                "type": None,
                "deprecation": None,
            }

        links = [link("first", 0), link("self", page)]
        if page + 1 < pages:
            links.append(link("next", page + 1))
        links.append(link("last", max(0, pages - 1)))
        return {
            "links": links,
            "content": content,
            "page": {"size": limit, "totalElements": total, "totalPages": pages, "number": page},
        }

    def _acknowledge(self, req: Request):
        self._check_doc_type(req)
        body, ids = self._body(req, "ids")
        system_id = body.get("systemId")
        results, changed = [], {}
        with self.lock:
            for d in ids:
                if not isinstance(d, str) or self._wrap(d) is None:
                    code, msg = DOES_NOT_EXIST
                    results.append(
                        {
                            "code": code,
                            "docId": d,
                            "systemId": system_id,
                            "acknowledgeResult": "FAILURE",
                            "errorMessage": msg,
                        }
                    )
                    continue
                st = changed.get(d) or self._state(d)
                if st["status"] == READY:
                    self._set_status(d, st, ACKNOWLEDGED)
                st["acks"] = st.get("acks", 0) + 1
                changed[d] = st
                results.append(
                    {"code": 0, "docId": d, "systemId": system_id, "acknowledgeResult": "SUCCESS", "errorMessage": ""}
                )
            if changed:
                self.store.put_many("state", changed)
        return results

    def _posting_confirmations(self, req: Request):
        self._check_doc_type(req)
        body, items = self._body(req, "postingConfirmations")
        system_id = body.get("systemId")
        results, changed = [], {}

        def answer(d: Any, code: int = 0, error: str = "") -> dict:
            return {
                "code": code,
                "docId": d,
                "systemId": system_id,
                "postingConfirmationResult": "FAILURE" if code else "SUCCESS",
                "errorMessage": error,
                "detailMessage": "",
            }

        with self.lock:
            for pc in items:
                d = pc.get("docId") if isinstance(pc, dict) else None
                if not isinstance(d, str) or self._wrap(d) is None:
                    results.append(answer(d, *DOES_NOT_EXIST))
                    continue
                outcome = str(pc.get("overallPostingStatusCode", "")).lower()
                if outcome not in ("success", "error"):
                    results.append(
                        answer(
                            d,
                            100,
                            f"overallPostingStatusCode must be 'success' or 'error', "
                            f"not '{pc.get('overallPostingStatusCode')}'.",
                        )
                    )
                    continue
                st = changed.get(d) or self._state(d)
                docs = [
                    {
                        "companyId": p.get("companyId"),
                        "documentNumber": p.get("documentNumber"),
                        "fiscalYear": p.get("fiscalYear"),
                        "postingDate": p.get("postingDate"),
                    }
                    for p in pc.get("postingDocs") or []
                    if isinstance(p, dict)
                ]
                messages = [
                    {"id": m.get("messageId", ""), "text": m.get("messageLongText") or m.get("messageShortText", "")}
                    for m in pc.get("systemMessages") or []
                    if isinstance(m, dict)
                ]
                self._set_status(d, st, POSTED if outcome == "success" else FAILED)
                st["postingDocs"], st["messages"] = docs, messages
                st["erpDocumentNumber"] = docs[0]["documentNumber"] if outcome == "success" and docs else None
                st["confirmations"] = st.get("confirmations", 0) + 1
                changed[d] = st
                results.append(answer(d))
            if changed:
                self.store.put_many("state", changed)
        return results

    def _payment_confirmations(self, req: Request):
        self._check_doc_type(req)
        body, items = self._body(req, "processingConfirmation")
        system_id = body.get("systemId")
        results, changed = [], {}

        def answer(d: Any, code: int = 0, error: str = "") -> dict:
            return {
                "code": code,
                "docId": d,
                "systemId": system_id,
                "paymentConfirmationResult": "FAILURE" if code else "SUCCESS",
                "errorMessage": error,
                "detailMessage": "",
            }

        with self.lock:
            for pc in items:
                d = pc.get("docId") if isinstance(pc, dict) else None
                if not isinstance(d, str) or self._wrap(d) is None:
                    results.append(answer(d, *DOES_NOT_EXIST))
                    continue
                code = pc.get("processingStatusCode")
                if code not in PAYMENT_CODES:
                    results.append(answer(d, 100, f"processingStatusCode must be one of CP, PP, RE, OB, not '{code}'."))
                    continue
                try:
                    clearing = [c for c in pc.get("clearingDetails") or [] if isinstance(c, dict)]
                    amount = sum((Decimal(str(c.get("clearingAmount") or 0)) for c in clearing), Decimal(0))
                except InvalidOperation:
                    results.append(answer(d, 100, "clearingAmount must be a number."))
                    continue
                st = changed.get(d) or self._state(d)
                # The same confirmation twice is one payment: key it on its content.
                key = hashlib.sha1(dumps(pc)).hexdigest()[:16]
                payments = list(st.get("payments", []))
                if key not in {p["key"] for p in payments}:
                    first = clearing[0] if clearing else {}
                    payments.append(
                        {
                            "key": key,
                            "code": code,
                            "amount": str(amount),
                            "currency": first.get("clearingCurrency"),
                            "date": first.get("clearingDate"),
                            "reference": (first.get("clearingReference") or {}).get("paymentRef"),
                        }
                    )
                st["payments"] = payments
                st["paymentStatusCode"] = code
                st["paymentConfirmedAmount"] = str(sum((Decimal(p["amount"]) for p in payments), Decimal(0)))
                st["paymentConfirmations"] = st.get("paymentConfirmations", 0) + 1
                changed[d] = st
                results.append(answer(d))
            if changed:
                self.store.put_many("state", changed)
        return results

    # --- Expense v4 ---------------------------------------------------------------------------
    def _expense_report(self, req: Request):
        user, ctx, report_id = req.match["user"], req.match["ctx"], req.match["report"]
        if ctx.upper() not in ("TRAVELER", "MANAGER", "PROCESSOR"):
            raise self._bad_request(f"contextType '{ctx}' is not valid; use TRAVELER, MANAGER or PROCESSOR.")
        with self.lock:
            doc_id = self._by_report.get(report_id)
            wrap = self._wrap(doc_id) if doc_id else None
            if wrap is None or wrap["summary"]["userId"].lower() != user.lower():
                return 404, self.error_body(404, "notFound", f"Report '{report_id}' was not found for user '{user}'.")
            state = self._state(doc_id)
        return expense_v4_report(wrap["summary"], state, f"http://{req.headers.get('Host', '127.0.0.1')}")

    # --- sandbox control and console ----------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        counts = {s: 0 for s in console.STATUSES}
        for st in self.store.data.get("state", {}).values():
            counts[st.get("status", READY)] += 1
        counts[READY] = len(self._ready)  # untouched documents have no state row
        return counts

    def _console(self, req: Request):
        status = req.query.get("status", "ALL").upper()
        if status not in console.STATUSES and status != "ALL":
            status = "ALL"
        page = max(0, int(req.query.get("page", "0")) if req.query.get("page", "0").isdigit() else 0)
        lo, hi = page * CONSOLE_PAGE, (page + 1) * CONSOLE_PAGE
        with self.lock:
            if status == "ALL":
                ids = self._order[lo : hi + 1]
            elif status == READY:
                ids = [self._order[s] for s in self._ready[lo : hi + 1]]
            else:
                states = self.store.data.get("state", {})
                chosen = sorted((self._wrap(d)["seq"], d) for d, st in states.items() if st.get("status") == status)
                ids = [d for _, d in chosen[lo : hi + 1]]
            rows = [(d, self._wrap(d)["summary"], self._state(d)) for d in ids[:CONSOLE_PAGE]]
            counts = self._counts()
        return console.render(
            counts, rows, status=status, page=page, has_more=len(ids) > CONSOLE_PAGE, page_size=CONSOLE_PAGE
        )

    def _sandbox_report(self, req: Request):
        key = req.match["id"]
        with self.lock:
            doc_id = self._by_report.get(key, key)
            wrap = self._wrap(doc_id)
            if wrap is None:
                return 404, self.error_body(404, "notFound", f"No report or FIS document '{key}'.")
            state = self._state(doc_id)
        return {
            "docId": doc_id,
            "reportId": wrap["summary"]["reportId"],
            "userId": wrap["summary"]["userId"],
            "status": state["status"],
            "erpDocumentNumber": state.get("erpDocumentNumber"),
            "state": state,
            "summary": wrap["summary"],
            "document": wrap["item"]["document"],
        }

    def _touch(self, req: Request):
        body = req.json() or {}
        if not isinstance(body, dict) or body.get("stream", "expense_reports") != "expense_reports":
            raise self._bad_request("stream must be 'expense_reports'.")
        try:
            count = int(body.get("count", 1))
        except (TypeError, ValueError):
            raise self._bad_request("count must be an integer.") from None
        if not 1 <= count <= 1000:
            raise self._bad_request("count must be between 1 and 1000.")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise self._bad_request("description must be a string.")
        employees = self.employees()
        with self.lock:
            made = (self.store.get("meta", "touch") or {}).get("n", 0)
            new: dict[str, dict] = {}
            for k in range(made + 1, made + count + 1):
                report = new_report(self.seed, k, self.today, employees, description)
                seq = len(self._order)
                new[report.doc_id] = {"seq": seq, "item": transaction(report), "summary": summary(report, self.seed)}
                self._order.append(report.doc_id)
                self._by_report[report.report_id] = report.doc_id
                self._ready.append(seq)  # the highest seq so far: the list stays sorted
            self.store.put_many("fis", new)
            self.store.put("meta", "touch", {"n": made + count})
        return {"created": list(new), "reportIds": [w["summary"]["reportId"] for w in new.values()]}

    def _redeliver(self, req: Request):
        body = req.json()
        ids = body.get("doc_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise self._bad_request("The request body must be an object with a 'doc_ids' array.")
        out: dict[str, list] = {"redelivered": [], "already_ready": [], "unknown": []}
        changed = {}
        with self.lock:
            for d in ids:
                if not isinstance(d, str) or self._wrap(d) is None:
                    out["unknown"].append(d)
                    continue
                st = changed.get(d) or self._state(d)
                if st["status"] == READY:
                    out["already_ready"].append(d)
                    continue
                self._set_status(d, st, READY)
                st["redeliveries"] = st.get("redeliveries", 0) + 1
                changed[d] = st
                out["redelivered"].append(d)
            if changed:
                self.store.put_many("state", changed)
        return out

    def stats_payload(self) -> dict:
        with self.lock:
            states = dict(self.store.data.get("state", {}))
            counts = self._counts()
            total = len(self._order)
        return {
            **self.stats,  # fault counters (faults.429, faults.500, ...)
            "documents": total,
            "by_status": counts,
            "acknowledgements": sum(st.get("acks", 0) for st in states.values()),
            "posting_confirmations": sum(st.get("confirmations", 0) for st in states.values()),
            "payment_confirmations": sum(st.get("paymentConfirmations", 0) for st in states.values()),
            # Only documents something happened to: an 11,000-document seed stays compact.
            "docs": {
                d: {
                    "status": st.get("status", READY),
                    "erpDocumentNumber": st.get("erpDocumentNumber"),
                    "acknowledgements": st.get("acks", 0),
                    "confirmations": st.get("confirmations", 0),
                    "payments": len(st.get("payments", [])),
                }
                for d, st in states.items()
            },
        }
