"""Coupa connector: the procurement objects as canonical records, and the writes the workbench needs.

Reading comes in two kinds (see ``discover()``):

- **cursor streams** (suppliers, commodities, contracts, requisitions, purchase_orders) ask for
  ``updated-at[gt]=<bound - 1 s>`` ordered by ``updated-at`` then ``id``. Coupa offers ``[gt]`` only,
  and its timestamps have whole seconds, so stepping back one second makes the lower bound
  inclusive; the cursor ``{"updated_at", "ids"}`` remembers the ids already yielded *at* the
  bound so they are not yielded again (a changed one has a later ``updated-at`` and comes back).
  Each page restarts from the newest bound instead of using ``offset`` (keyset paging): an object
  changed while we page moves to the end and is met again, never skipped. ``offset`` is used only
  to step over more than a page of objects sharing one second.
- **queues** (receipts, invoices) read ``exported=false`` ordered by id, paging with ``id[gt]``
  so that marking a page exported while reading does not shift the next one.
  ``next_cursor`` is ``{"after_id"}`` while pages remain and ``None`` on the last one.

An object that cannot be mapped becomes a ``RecordError`` in ``page.errors``; a body that is not a
JSON list is ``MalformedPayload``. Writes are idempotent by content (Coupa has no idempotency
header): each looks at the current state first or sets absolute values.

Config: ``base_url``; ``api_key`` (sent as ``X-COUPA-API-KEY``) or ``client_id`` + ``client_secret``
(OAuth 2.0 client credentials at ``/oauth2/token``); ``page_size`` (default and max 50);
``timeout`` (seconds, default 30).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import requests

from connectors.base import (
    CheckResult,
    ConfigError,
    ConfigReader,
    ConnectorError,
    MalformedPayload,
    Page,
    Rejected,
    StreamSpec,
    WriteOp,
    WriteResult,
)
from connectors.http import HttpClient, json_exact, timeouts

from . import mapping

TOKEN_PATH = "/oauth2/token"
MAX_PAGE = 50  # Coupa's largest limit
# stream -> (canonical object, API path, cursor field or None for an exported=false queue)
STREAMS: dict[str, tuple[str, str, str | None]] = {
    "suppliers": ("supplier", "/api/suppliers", "updated_at"),
    "commodities": ("category", "/api/commodities", "updated_at"),
    "contracts": ("contract", "/api/contracts", "updated_at"),
    "requisitions": ("requisition", "/api/requisitions", "updated_at"),
    "purchase_orders": ("purchase_order", "/api/purchase_orders", "updated_at"),
    "receipts": ("goods_receipt", "/api/receiving_transactions", None),
    "invoices": ("supplier_invoice", "/api/invoices", None),
}
EXPORTABLE = {"invoices": "invoices", "receipts": "receiving_transactions", "requisitions": "requisitions"}


def parse_error(body: Any) -> tuple[str, str]:
    """Coupa: ``{"errors": {"requisition": ["..."]}}``; older/other endpoints ``{"error": "..."}``."""
    if isinstance(body, dict):
        errs = body.get("errors")
        if isinstance(errs, dict):
            return "", "; ".join(f"{k}: {m}" for k, v in errs.items() for m in (v if isinstance(v, list) else [v]))
        if isinstance(errs, list):
            return "", "; ".join(map(str, errs))
        if isinstance(body.get("error"), str):  # OAuth and a few plain endpoints
            return (
                (body["error"], str(body["error_description"]))
                if body.get("error_description")
                else ("", body["error"])
            )
    return "", json.dumps(body, default=str)[:500]


class ApiKeyClient(HttpClient):
    """Coupa API keys travel in ``X-COUPA-API-KEY``; there is no token to fetch or send."""

    def __init__(self, base_url: str, *, api_key: str, **kwargs: Any):
        super().__init__(base_url, token_url="", client_id="", client_secret="", **kwargs)
        self.session.headers["X-COUPA-API-KEY"] = api_key

    def token(self, *, refresh: bool = False) -> str:
        return ""

    def request(self, method, path, *, params=None, json_body=None, headers=None):
        # None removes the (empty) bearer header HttpClient adds: requests drops None-valued headers.
        return super().request(
            method, path, params=params, json_body=json_body, headers={"Authorization": None, **(headers or {})}
        )


class CoupaConnector:
    kind = "coupa"

    def __init__(self, config: dict[str, Any]):
        cfg = ConfigReader(self.kind, config)
        self.base_url = cfg.url("base_url")
        if not cfg.has("api_key") and not cfg.has("client_id", "client_secret"):
            raise ConfigError("coupa config needs 'api_key', or 'client_id' and 'client_secret'")
        self.page_size = cfg.positive_int("page_size", MAX_PAGE, maximum=MAX_PAGE)
        common = {"error_parser": parse_error, "timeout": timeouts(cfg.timeout())}
        if cfg.has("api_key"):
            self.http: HttpClient = ApiKeyClient(self.base_url, api_key=cfg.text("api_key"), **common)
        else:
            self.http = HttpClient(
                self.base_url,
                token_url=f"{self.base_url}{TOKEN_PATH}",
                client_id=cfg.text("client_id"),
                client_secret=cfg.text("client_secret"),
                **common,
            )

    # --- contract ------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        try:
            self._get_list("/api/suppliers", {"limit": 1})
        except ConfigError as exc:
            return CheckResult(False, f"Coupa rejected the credentials: {exc}")
        except ConnectorError as exc:
            return CheckResult(False, f"Coupa is not reachable: {exc}")
        return CheckResult(True, f"Coupa API reachable at {self.base_url}")

    def discover(self) -> list[StreamSpec]:
        return [
            StreamSpec(name=name, canonical=canonical, cursor_field=cursor)
            for name, (canonical, _path, cursor) in STREAMS.items()
        ]

    def read(self, stream: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if stream not in STREAMS:
            raise ValueError(f"coupa has no stream {stream!r}; it offers {', '.join(STREAMS)}")
        _canonical, path, cursor_field = STREAMS[stream]
        if cursor_field:
            return self._read_updated(stream, path, cursor or {})
        return self._read_queue(stream, path, cursor or {})

    def write(self, op: WriteOp, *, idempotency_key: str) -> WriteResult:
        handlers: dict[str, Callable[[dict[str, Any]], WriteResult]] = {
            "mark_exported": self._mark_exported,
            "requisition_validation": self._requisition_validation,
            "requisition_decision": self._requisition_decision,
            "requisition_ordered": self._requisition_ordered,
            "invoice_status": self._invoice_status,
        }
        if op.action not in handlers:
            raise ValueError(f"coupa has no write {op.action!r}; it offers {', '.join(handlers)}")
        try:
            return handlers[op.action](op.payload)
        except KeyError as exc:
            raise ValueError(f"coupa {op.action}: the payload needs {exc}") from None

    # --- reading -------------------------------------------------------------------------------
    def _read_updated(self, stream: str, path: str, cursor: dict[str, Any]) -> Iterator[Page]:
        try:
            bound = mapping.timestamp(cursor.get("updated_at"), "cursor updated_at")
        except mapping.MappingError as exc:
            raise ValueError(str(exc)) from None
        seen = {str(i) for i in cursor.get("ids") or []} if bound else set()
        skip = 0
        while True:
            params: dict[str, Any] = {"limit": self.page_size, "order_by": "updated_at", "dir": "asc"}
            if bound:
                params["updated-at[gt]"] = (mapping.parse_ts(bound) - timedelta(seconds=1)).isoformat()
            if skip:
                params["offset"] = skip
            batch = self._get_list(path, params)
            records, errors, fresh = [], [], 0
            new_bound, new_seen, last_ts = bound, set(seen), None
            for obj in batch:
                oid = str(obj.get("id")) if isinstance(obj, dict) else None
                ts = self._updated_at(obj)
                if ts is not None:
                    if last_ts is not None and ts < last_ts:
                        raise MalformedPayload(f"GET {path}: ordered by updated-at but {ts} follows {last_ts}")
                    last_ts = ts
                if ts is not None and ts == bound and oid in seen:
                    continue  # yielded last time, unchanged since
                fresh += 1
                record, error = mapping.map_record(stream, obj)
                if record is not None:
                    records.append(record)
                else:
                    errors.append(error)
                if ts is not None and oid is not None:
                    if new_bound is None or ts > new_bound:
                        new_bound, new_seen = ts, {oid}
                    elif ts == new_bound:
                        new_seen.add(oid)
            full = len(batch) >= self.page_size
            if full and not fresh:
                skip += len(batch)  # a whole page at the bound second, all seen: step over it
                continue
            if new_bound != bound:
                skip = 0
            bound, seen = new_bound, new_seen
            next_cursor = {"updated_at": bound, "ids": sorted(seen)} if bound else None
            yield Page(records, next_cursor, errors)
            if not full:
                return

    def _read_queue(self, stream: str, path: str, cursor: dict[str, Any]) -> Iterator[Page]:
        after = cursor.get("after_id")
        while True:
            params: dict[str, Any] = {"exported": "false", "limit": self.page_size, "order_by": "id", "dir": "asc"}
            if after is not None:
                params["id[gt]"] = after
            batch = self._get_list(path, params)
            records, errors = [], []
            for obj in batch:
                record, error = mapping.map_record(stream, obj)
                if record is not None:
                    records.append(record)
                else:
                    errors.append(error)
            if len(batch) < self.page_size:
                yield Page(records, None, errors)
                return
            last = batch[-1].get("id") if isinstance(batch[-1], dict) else None
            if not isinstance(last, int) or (after is not None and last <= int(after)):
                raise MalformedPayload(f"GET {path}: cannot page on id after {last!r}")
            after = last
            yield Page(records, {"after_id": after}, errors)

    @staticmethod
    def _updated_at(obj: Any) -> str | None:
        try:
            return mapping.timestamp(obj.get("updated-at"), "updated-at") if isinstance(obj, dict) else None
        except mapping.MappingError:
            return None

    # --- writes --------------------------------------------------------------------------------
    def _mark_exported(self, p: dict[str, Any]) -> WriteResult:
        obj = p["object"]
        if obj not in EXPORTABLE:
            raise ValueError(f"mark_exported: object must be one of {', '.join(EXPORTABLE)}, not {obj!r}")
        ids = [self._id(i) for i in p["ids"]]
        for oid in ids:
            self._put(f"/api/{EXPORTABLE[obj]}/{oid}", {"exported": True})
        return WriteResult(external_id=",".join(ids), status="exported", data={"object": obj, "exported": ids})

    def _requisition_validation(self, p: dict[str, Any]) -> WriteResult:
        rid, status = self._id(p["requisition_id"]), p["status"]
        if status not in ("valid", "invalid"):
            raise ValueError(f"requisition_validation: status must be valid or invalid, not {status!r}")
        body: dict[str, Any] = {
            "validation-status": status,
            "validation-messages": "\n".join(str(m) for m in p.get("messages") or []),
        }
        # As a synchronous Call Out refusal does: an invalid one goes back to the requester -- but
        # only while it waits for approval (a late verdict must not undo a decision or an order).
        if status == "invalid" and self._get(f"/api/requisitions/{rid}").get("status") == "pending_approval":
            body["status"] = "draft"
        self._put(f"/api/requisitions/{rid}", body)
        return WriteResult(external_id=rid, status=status, data={"messages": body["validation-messages"]})

    def _requisition_decision(self, p: dict[str, Any]) -> WriteResult:
        rid, decision = self._id(p["requisition_id"]), p["decision"]
        if decision not in ("approved", "rejected"):
            raise ValueError(f"requisition_decision: decision must be approved or rejected, not {decision!r}")
        current = str(self._get(f"/api/requisitions/{rid}").get("status"))
        done = current == decision or (decision == "approved" and current == "ordered")
        if not done:
            if current != "pending_approval":
                raise Rejected(
                    "invalid_state", f"requisition {rid} is {current}; only one pending approval can be {decision}"
                )
            body: dict[str, Any] = {"status": decision}
            if decision == "rejected":
                body["reject-reason-comment"] = str(p.get("comment") or "")
            self._put(f"/api/requisitions/{rid}", body)
        return WriteResult(
            external_id=rid,
            status=decision,
            data={"approver": str(p.get("approver") or ""), "comment": str(p.get("comment") or "")},
        )

    def _requisition_ordered(self, p: dict[str, Any]) -> WriteResult:
        rid, po_number = self._id(p["requisition_id"]), str(p["po_number"])
        commitment = p.get("commitment")
        # Coupa creates the PO under the ERP's number once; a resend finds the requisition ordered
        # on the same number and changes nothing.
        self._put(
            f"/api/requisitions/{rid}",
            {
                "status": "ordered",
                "erp-po-number": po_number,
                "erp-commitment": "" if commitment is None else str(commitment),
            },
        )
        found = self._get_list("/api/purchase_orders", {"po-number": po_number, "limit": 1})
        if not found or not isinstance(found[0], dict) or "id" not in found[0]:
            raise MalformedPayload(f"Coupa shows no purchase order {po_number} after ordering requisition {rid}")
        return WriteResult(
            external_id=str(found[0]["id"]),
            status="ordered",
            data={"po_number": po_number, "requisition_id": rid, "currency": str(p.get("currency") or "")},
        )

    def _invoice_status(self, p: dict[str, Any]) -> WriteResult:
        iid, status = self._id(p["invoice_id"]), p["status"]
        if status not in ("approved", "disputed", "voided"):
            raise ValueError(f"invoice_status: status must be approved, disputed or voided, not {status!r}")
        document = str(p.get("erp_document_number") or "")
        body = {
            "status": status,
            "erp-document-number": document,
            "erp-status": "posted" if document else status,
            "payment-status": str(p.get("payment_status") or ""),
            "erp-comment": str(p.get("comment") or ""),
        }
        self._put(f"/api/invoices/{iid}", body)
        return WriteResult(
            external_id=iid,
            status=status,
            data={"erp_document_number": document, "payment_status": body["payment-status"]},
        )

    # --- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _id(value: Any) -> str:
        text = str(value)
        if not text.isdigit():
            raise ValueError(f"a Coupa id is an integer, not {value!r}")
        return text

    def _json(self, resp: requests.Response) -> Any:
        # Not json_of: an empty body (204) is not an answer Coupa gives to these calls.
        return json_exact(resp.content, where=f"{resp.request.method} {resp.url}")

    def _get_list(self, path: str, params: dict[str, Any]) -> list[Any]:
        resp = self.http.request("GET", path, params=params)
        body = self._json(resp)
        if not isinstance(body, list):
            raise MalformedPayload(f"GET {resp.url}: expected a JSON array, got {resp.text[:200]!r}")
        return body

    def _get(self, path: str) -> dict[str, Any]:
        resp = self.http.request("GET", path)
        body = self._json(resp)
        if not isinstance(body, dict):
            raise MalformedPayload(f"GET {resp.url}: expected an object, got {resp.text[:200]!r}")
        return body

    def _put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(self.http.request("PUT", path, json_body=body))
