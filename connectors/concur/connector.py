"""SAP Concur connector: expense reports from the Financial Integration Service (FIS) v4 queue.

FIS is a queue, not a feed: ``GET .../transactions`` returns approved documents that nobody has
acknowledged yet, and an acknowledgement takes a document out of it. So ``expense_reports`` has no
cursor field; reading twice without acknowledging returns the same documents (the caller upserts)
and the caller acknowledges what it has safely stored (``write(acknowledge)``).

Paging: the connector follows the ``next`` links (on the connection's own origin only: a link to
another host is ``MalformedPayload``). If the caller acknowledges documents between two
pages, everything behind them moves up and a plain "next page" would skip documents; the
connector notices (``page.totalElements`` went down), steps back and skips the ids it has already
yielded. Whatever it might still miss stays READY in the queue for the next read: nothing is lost,
at worst delayed. ``next_cursor`` is ``{"page": n}`` while pages remain and ``None`` on the last one.

Config: ``base_url``, ``client_id``, ``client_secret``, ``page_size`` (default 100, FIS max 100),
``timeout`` (seconds, default 30), ``system_id`` (optional ERP system id sent with writes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from math import ceil
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from connectors.http import HttpClient, json_exact, same_origin, timeouts

from . import mapping

FIS = "/fi/v4/companies/transactiontypes/expense/transactions"
TOKEN_PATH = "/oauth2/v0/token"
STREAM = "expense_reports"
MAX_PAGE = 100  # FIS' largest limit
ACK_BATCH = 100
PREVIOUSLY_ACKNOWLEDGED = 101  # FIS' code for an acknowledgement of an acknowledged document


def parse_error(body: Any) -> tuple[str, str]:
    """Concur v4 errors are ``{"errorId", "errorMessage", "httpStatus"}``; OAuth's ``{"error", ...}``."""
    if isinstance(body, dict):
        if "errorMessage" in body:
            return str(body.get("errorId") or body.get("httpStatus") or ""), str(body["errorMessage"])
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("code", "")), str(err.get("message", ""))
        if isinstance(err, str):
            return err, str(body.get("error_description", ""))
        if "message" in body:
            return str(body.get("code", "")), str(body["message"])
    return "", json.dumps(body, default=str)[:500]


def _result(item: dict) -> str:
    """FIS names the outcome per call: acknowledgeResult, postingConfirmationResult, ..."""
    for key, value in item.items():
        if key.endswith("Result"):
            return str(value).upper()
    return ""


class ConcurConnector:
    kind = "concur"

    def __init__(self, config: dict[str, Any]):
        cfg = ConfigReader(self.kind, config)
        self.base_url = cfg.url("base_url")
        client_id, client_secret = cfg.text("client_id"), cfg.text("client_secret")
        self.page_size = cfg.positive_int("page_size", MAX_PAGE, maximum=MAX_PAGE)
        timeout = cfg.timeout()
        self.system_id = cfg.text("system_id", "")
        self.http = HttpClient(
            self.base_url,
            token_url=f"{self.base_url}{TOKEN_PATH}",
            client_id=client_id,
            client_secret=client_secret,
            error_parser=parse_error,
            timeout=timeouts(timeout),
        )

    # --- contract ------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        try:
            body = self._get_page({"page": 0, "limit": 1})
        except ConfigError as exc:
            return CheckResult(False, f"Concur rejected the credentials: {exc}")
        except ConnectorError as exc:
            return CheckResult(False, f"Concur FIS is not reachable: {exc}")
        waiting = (body.get("page") or {}).get("totalElements")
        suffix = f"; {waiting} expense document(s) waiting" if isinstance(waiting, int) else ""
        return CheckResult(True, f"Concur FIS reachable at {self.base_url}{suffix}")

    def discover(self) -> list[StreamSpec]:
        return [StreamSpec(name=STREAM, canonical="expense_report", cursor_field=None)]

    def read(self, stream: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if stream != STREAM:
            raise ValueError(f"concur has no stream {stream!r}; it offers {STREAM!r}")
        page = int((cursor or {}).get("page") or 0)
        params: dict[str, Any] = {"page": page, "limit": self.page_size}
        seen: set[str] = set()
        last_total: int | None = None
        while True:
            body = self._get_page(params)
            total = (body.get("page") or {}).get("totalElements")
            if isinstance(total, int) and last_total is not None and total < last_total and page > 0:
                # Documents we yielded were acknowledged meanwhile and the queue moved up: step back.
                page = max(0, page - ceil((last_total - total) / self.page_size))
                last_total = total
                params = {"page": page, "limit": self.page_size}
                continue
            last_total = total if isinstance(total, int) else last_total
            records, errors = [], []
            for item in body["content"]:
                doc_id = item.get("id") if isinstance(item, dict) else None
                if isinstance(doc_id, str):
                    if doc_id in seen:
                        continue
                    seen.add(doc_id)
                record, error = mapping.map_transaction(item)
                if record is not None:
                    records.append(record)
                else:
                    errors.append(error)
            nxt = self._next(body)
            if nxt is None:
                yield Page(records, None, errors)
                return
            params, next_page = nxt
            if next_page <= page:
                raise MalformedPayload(f"FIS next link goes from page {page} to page {next_page}")
            page = next_page
            if records or errors:
                yield Page(records, {"page": page}, errors)

    def write(self, op: WriteOp, *, idempotency_key: str) -> WriteResult:
        # FIS has no idempotency header; its writes are idempotent by content (a repeated
        # acknowledgement/confirmation succeeds again). The key travels as the correlation id so
        # the call can be found in Concur's logs.
        headers = {"concur-correlationid": idempotency_key}
        if op.action == "acknowledge":
            return self._acknowledge(list(op.payload.get("doc_ids") or []), headers)
        if op.action == "posting_confirmation":
            body = mapping.posting_confirmation_body(op.payload, self.system_id)
            item = self._post_one(f"{FIS}/postingconfirmations", body, op.payload["doc_id"], headers)
            numbers = [d["documentNumber"] for d in body["postingConfirmations"][0]["postingDocs"]]
            return WriteResult(
                external_id=op.payload["doc_id"],
                status="confirmed",
                message=str(item.get("detailMessage") or ""),
                data={"posting_status": op.payload["status"], "document_numbers": numbers},
            )
        if op.action == "payment_confirmation":
            body = mapping.payment_confirmation_body(op.payload, self.system_id)
            item = self._post_one(f"{FIS}/paymentconfirmations", body, op.payload["doc_id"], headers)
            return WriteResult(
                external_id=op.payload["doc_id"],
                status="payment_confirmed",
                message=str(item.get("detailMessage") or ""),
                data={"status_code": op.payload["status_code"]},
            )
        raise ValueError(
            f"concur has no write {op.action!r}; it offers acknowledge, posting_confirmation, payment_confirmation"
        )

    # --- Expense v4 (not part of the contract: lets sync verify what Concur shows) -------------
    def get_expense_report(self, user_id: str, report_id: str) -> dict[str, Any]:
        path = f"/expensereports/v4/users/{user_id}/context/TRAVELER/reports/{report_id}"
        body = self._json(self.http.request("GET", path))
        if not isinstance(body, dict):
            raise MalformedPayload(f"GET {path}: expected a report object, got {type(body).__name__}")
        return body

    # --- helpers -------------------------------------------------------------------------------
    def _json(self, resp: requests.Response) -> Any:
        return json_exact(resp.content, where=f"{resp.request.method} {resp.url}")

    def _get_page(self, params: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.request("GET", FIS, params=params, headers={"documentFormatAs": "JSON"})
        body = self._json(resp)
        if not isinstance(body, dict) or not isinstance(body.get("content"), list):
            raise MalformedPayload(f"GET {resp.url}: expected an object with a 'content' list, got {resp.text[:200]!r}")
        return body

    def _next(self, body: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
        """The ``next`` link as (query params, page). A link to another origin is refused
        (``same_origin``: the token must never go to another host); of a link on our origin only
        the query is used, on our own FIS path (a proxy may rewrite the path)."""
        for link in body.get("links") or []:
            if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
                parts = urlsplit(same_origin(self.base_url, link["href"], what="FIS next link"))
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                try:
                    page = int(query.get("page", ""))
                except ValueError:
                    raise MalformedPayload(f"next link without a page number: {link['href']!r}") from None
                return query, page
        return None

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
        resp = self.http.request("POST", path, json_body=body, headers=headers)
        answer = self._json(resp)
        if not isinstance(answer, list) or not all(isinstance(i, dict) for i in answer):
            raise MalformedPayload(f"POST {path}: expected a list of results, got {resp.text[:200]!r}")
        return answer

    def _post_one(self, path: str, body: dict[str, Any], doc_id: str, headers: dict[str, str]) -> dict[str, Any]:
        answer = self._post(path, body, headers)
        item = next((i for i in answer if i.get("docId") == doc_id), None)
        if item is None:
            raise MalformedPayload(f"POST {path}: no result for document {doc_id}")
        if _result(item) != "SUCCESS":
            # e.g. 116 "This document does not exist." -- a business refusal, not a retry case.
            raise Rejected(str(item.get("code", "")), f"{item.get('errorMessage') or 'refused'} (document {doc_id})")
        return item

    def _acknowledge(self, doc_ids: list[str], headers: dict[str, str]) -> WriteResult:
        acknowledged: list[str] = []
        failures: list[tuple[str, str, str]] = []
        for start in range(0, len(doc_ids), ACK_BATCH):
            batch = doc_ids[start : start + ACK_BATCH]
            answer = self._post(f"{FIS}/acknowledgements", {"ids": batch}, headers)
            by_id = {i.get("docId"): i for i in answer}
            for doc_id in batch:
                item = by_id.get(doc_id)
                if item is None:
                    raise MalformedPayload(f"acknowledgements: no result for document {doc_id}")
                message = str(item.get("errorMessage") or "")
                # "Previously acknowledged" means the document is out of the queue: what we wanted.
                if (
                    _result(item) == "SUCCESS"
                    or item.get("code") == PREVIOUSLY_ACKNOWLEDGED
                    or "previously acknowledged" in message.lower()
                ):
                    acknowledged.append(doc_id)
                else:
                    failures.append((doc_id, str(item.get("code", "")), message))
        if failures:
            code = failures[0][1]
            detail = "; ".join(f"{d}: {m or 'refused'}" for d, _, m in failures)
            raise Rejected(code, f"{len(failures)} of {len(doc_ids)} acknowledgement(s) refused: {detail}")
        return WriteResult(external_id=",".join(doc_ids), status="acknowledged", data={"acknowledged": acknowledged})
