"""ServiceNow connector: the approval engine, through the Table API.

Streams ``approvals`` (``sysapproval_approver``) and ``users`` (``sys_user``) are read
incrementally on ``sys_updated_on`` with ``sysparm_query=sys_updated_on>=X^ORDERBYsys_updated_on``.
The lower bound is inclusive and ServiceNow stamps to the second, so the cursor also keeps the
records already seen at that second (``{"sys_updated_on": X, "seen": ["<sys_id>:<sys_mod_count>"]}``);
a record changed again within the same second has a new ``sys_mod_count`` and is read again.

Paging: every page re-anchors the query on the newest ``sys_updated_on`` read so far, and uses
``sysparm_offset`` only while a whole page shares one second. Plain offset paging over a sorted
set would skip rows whenever a record read earlier is updated (and moves to the end) mid-read.

Writes: ``create_approval`` looks ``u_correlation_id`` up first (a resend, even after a timeout,
makes no second record) and resolves the approver's employee number to a ``sys_user``;
``cancel_approval`` sets ``state=cancelled``. ServiceNow has no idempotency header.

Config: ``base_url``; ``client_id``/``client_secret`` (OAuth, ``/oauth_token.do``) or
``username``/``password`` (HTTP Basic); ``page_size`` (default 100); ``timeout`` (seconds, default 30).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

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
from connectors.http import HttpClient, timeouts

from . import mapping

TABLE = "/api/now/table"
TOKEN_PATH = "/oauth_token.do"
MAX_PAGE = 10000
APPROVAL_FIELDS = (
    "sys_id,sys_updated_on,sys_mod_count,state,approver,approver.employee_number,comments,due_date,"
    "u_correlation_id,u_document_number,u_amount,u_currency"
)
USER_FIELDS = "sys_id,sys_updated_on,sys_mod_count,user_name,employee_number,name,email,active,manager.employee_number"
# stream -> (table, sysparm_fields, mapper, canonical)
STREAMS: dict[str, tuple[str, str, Callable[[Any], dict], str]] = {
    "approvals": ("sysapproval_approver", APPROVAL_FIELDS, mapping.approval, "approval_decision"),
    "users": ("sys_user", USER_FIELDS, mapping.user, "approver"),
}
DECIDED = ("approved", "rejected")


def parse_error(body: Any) -> tuple[str, str]:
    """Table API errors are ``{"error": {"message", "detail"}, "status": "failure"}``; OAuth's ``{"error": str}``."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            message, detail = str(err.get("message") or ""), err.get("detail")
            return "", f"{message}: {detail}" if detail else message
        if isinstance(err, str):
            return err, str(body.get("error_description", ""))
    return "", json.dumps(body, default=str)[:500]


def quote(value: str) -> str:
    """A value inside an encoded query: a literal caret is written ``^^``."""
    return str(value).replace("^", "^^")


class BasicAuthClient(HttpClient):
    """The shared client with HTTP Basic credentials instead of a bearer token (ServiceNow takes both)."""

    def __init__(self, base_url: str, *, username: str, password: str, **kwargs: Any):
        super().__init__(base_url, token_url="", client_id="", client_secret="", **kwargs)
        self._basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def token(self, *, refresh: bool = False) -> str:
        return ""  # no token endpoint: request() sends the Basic header instead

    def request(self, method: str, path: str, *, params=None, json_body=None, headers=None):
        return super().request(
            method, path, params=params, json_body=json_body, headers={**(headers or {}), "Authorization": self._basic}
        )


class ServiceNowConnector:
    kind = "servicenow"

    def __init__(self, config: dict[str, Any]):
        cfg = ConfigReader(self.kind, config)
        self.base_url = cfg.url("base_url")
        self.page_size = cfg.positive_int("page_size", 100, maximum=MAX_PAGE)
        common = {"error_parser": parse_error, "timeout": timeouts(cfg.timeout())}
        if cfg.has("client_id", "client_secret"):
            self.http: HttpClient = HttpClient(
                self.base_url,
                token_url=f"{self.base_url}{TOKEN_PATH}",
                client_id=cfg.text("client_id"),
                client_secret=cfg.text("client_secret"),
                **common,
            )
        elif cfg.has("username", "password"):
            self.http = BasicAuthClient(
                self.base_url, username=cfg.text("username"), password=cfg.text("password"), **common
            )
        else:
            raise ConfigError("servicenow config needs 'client_id'/'client_secret' or 'username'/'password'")

    # --- contract ------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        try:
            resp = self.http.request(
                "GET",
                f"{TABLE}/sysapproval_approver",
                params={"sysparm_query": "state=requested", "sysparm_fields": "sys_id", "sysparm_limit": 1},
            )
            self._result(resp, list)
        except ConfigError as exc:
            return CheckResult(False, f"ServiceNow rejected the credentials: {exc}")
        except ConnectorError as exc:
            return CheckResult(False, f"ServiceNow is not reachable: {exc}")
        waiting = resp.headers.get("X-Total-Count", "")
        suffix = f"; {waiting} approval(s) requested" if waiting.isdigit() else ""
        return CheckResult(True, f"ServiceNow Table API reachable at {self.base_url}{suffix}")

    def discover(self) -> list[StreamSpec]:
        return [
            StreamSpec(name=name, canonical=spec[3], cursor_field="sys_updated_on") for name, spec in STREAMS.items()
        ]

    def read(self, stream: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if stream not in STREAMS:
            raise ValueError(f"servicenow has no stream {stream!r}; it offers {', '.join(STREAMS)}")
        table, fields, mapper, _ = STREAMS[stream]
        ts = str((cursor or {}).get("sys_updated_on") or "")
        seen = set((cursor or {}).get("seen") or [])
        query_ts, offset, first = ts, 0, True
        while True:
            query = f"sys_updated_on>={quote(query_ts)}^" if query_ts else ""
            rows = self._list(
                table,
                {
                    "sysparm_query": f"{query}ORDERBYsys_updated_on^ORDERBYsys_id",
                    "sysparm_fields": fields,
                    "sysparm_limit": self.page_size,
                    "sysparm_offset": offset,
                },
            )
            records, errors = [], []
            for row in rows:
                row_ts = row.get("sys_updated_on") if isinstance(row, dict) else None
                key = f"{row.get('sys_id')}:{row.get('sys_mod_count')}" if isinstance(row, dict) else ""
                if isinstance(row_ts, str) and row_ts < query_ts:
                    raise MalformedPayload(f"{table}: sys_updated_on went backwards ({row_ts} < {query_ts})")
                if key in seen:
                    continue  # read before, at the boundary second
                record, error = mapping.map_record(mapper, row, table)
                if record is not None:
                    records.append(record)
                else:
                    errors.append(error)
                # Errors advance the cursor too: they are quarantined in page.errors, not lost.
                if isinstance(row_ts, str) and row_ts > ts:
                    ts, seen = row_ts, {key}
                elif row_ts == ts:
                    seen.add(key)
            if records or errors or first:
                yield Page(records, {"sys_updated_on": ts, "seen": sorted(seen)} if ts else None, errors)
            first = False
            if len(rows) < self.page_size:
                return
            if ts != query_ts:
                query_ts, offset = ts, 0
            else:
                offset += len(rows)  # a whole page in one second: step through it

    def write(self, op: WriteOp, *, idempotency_key: str) -> WriteResult:
        if op.action == "create_approval":
            return self._create_approval(op.payload)
        if op.action == "cancel_approval":
            return self._cancel_approval(op.payload)
        raise ValueError(f"servicenow has no write {op.action!r}; it offers create_approval, cancel_approval")

    # --- writes --------------------------------------------------------------------------------
    def _create_approval(self, payload: dict[str, Any]) -> WriteResult:
        key, code = payload.get("correlation_key"), payload.get("approver")
        if not key or not code:
            raise ValueError("create_approval needs correlation_key and approver")
        existing = self._list(
            "sysapproval_approver",
            {"sysparm_query": f"u_correlation_id={quote(key)}", "sysparm_fields": "sys_id,state", "sysparm_limit": 2},
        )
        if existing:
            # A resend (or a retry after a timeout that did land): the same record, never a second one.
            row = existing[0]
            return WriteResult(
                external_id=mapping.required(row, "sys_id"),
                status="requested",
                message="already requested",
                data={"state": str(row.get("state", "")).replace(" ", "_")},
            )
        users = self._list(
            "sys_user",
            {
                "sysparm_query": f"employee_number={quote(code)}",
                "sysparm_fields": "sys_id,active,name",
                "sysparm_limit": 2,
            },
        )
        if not users:
            raise Rejected(
                "UNKNOWN_APPROVER", f"No ServiceNow user has employee number {code}", field="approver", value=str(code)
            )
        if len(users) > 1:
            raise Rejected(
                "AMBIGUOUS_APPROVER",
                f"Several ServiceNow users have employee number {code}",
                field="approver",
                value=str(code),
            )
        if str(users[0].get("active")).lower() != "true":
            raise Rejected(
                "INACTIVE_APPROVER",
                f"ServiceNow user {users[0].get('name') or code} is not active",
                field="approver",
                value=str(code),
            )
        body = mapping.approval_body(payload, mapping.required(users[0], "sys_id"))
        row = self._result(self.http.request("POST", f"{TABLE}/sysapproval_approver", json_body=body), dict)
        return WriteResult(
            external_id=mapping.required(row, "sys_id"),
            status="requested",
            data={"state": str(row.get("state", "")).replace(" ", "_")},
        )

    def _cancel_approval(self, payload: dict[str, Any]) -> WriteResult:
        sys_id = str(payload.get("sys_id") or "")
        if not sys_id:
            raise ValueError("cancel_approval needs sys_id")
        path = f"{TABLE}/sysapproval_approver/{sys_id}"
        try:
            state = str(
                self._result(self.http.request("GET", path, params={"sysparm_fields": "sys_id,state"}), dict).get(
                    "state", ""
                )
            )
        except Rejected as exc:
            raise Rejected("UNKNOWN_APPROVAL", f"No approval {sys_id} in ServiceNow ({exc.message})") from None
        if state in DECIDED:
            raise Rejected("ALREADY_DECIDED", f"Approval {sys_id} is already {state}; it cannot be cancelled")
        if state != "cancelled":  # cancelled already: a resend, nothing to do
            body = {"state": "cancelled", "comments": str(payload.get("comments") or "")}
            try:
                self._result(self.http.request("PATCH", path, json_body=body), dict)
            except ConfigError as exc:
                # A business rule abort is a 403 "Operation Failed": decided between our read and write.
                if "Operation Failed" in str(exc):
                    raise Rejected("ALREADY_DECIDED", str(exc)) from None
                raise
        return WriteResult(external_id=sys_id, status="cancelled")

    # --- helpers -------------------------------------------------------------------------------
    def _result(self, resp, kind: type) -> Any:
        body = self.http.json_of(resp)
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, kind):
            raise MalformedPayload(
                f'{resp.request.method} {resp.url}: expected {{"result": {kind.__name__}}}, got {resp.text[:200]!r}'
            )
        return result

    def _list(self, table: str, params: dict[str, Any]) -> list[Any]:
        return self._result(self.http.request("GET", f"{TABLE}/{table}", params=params), list)
