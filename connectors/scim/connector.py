"""SCIM 2.0 connector: the identity provider's people directory (RFC 7644, as Microsoft Entra speaks it).

One stream, ``employees`` (canonical ``employee``), read from ``GET /scim/v2/Users`` sorted by
``meta.lastModified`` and paged with ``startIndex``/``count``. Incremental reads filter with
``meta.lastModified gt "<ts>"``. Directories stamp to the second and several changes share one
second, so a plain ``gt <cursor>`` would skip a change landing in the cursor's second after the
read. The connector therefore asks for ``gt <cursor - 1 s>`` and keeps, in the cursor, the
versions already read at the cursor's second (``{"last_modified": ts, "seen": ["<id>:<version>"]}``):
older rows and seen versions are dropped, a row changed again in that second has a new
``meta.version`` and is read again.

Paging: every page re-anchors the filter on the newest ``lastModified`` read so far and uses
``startIndex`` only while a whole page shares one second; plain index paging over a changing,
sorted set would skip rows whenever a user read earlier changes mid-read (it moves to the end).

Managers are references (SCIM ids). The connector keeps an id -> employee number map from every
User it reads and looks up the few managers it has not seen (``GET /Users/{id}``), so a record in an
incremental read still names its manager's employee number.

Writes: ``deactivate_user`` ``{"employee_number"}`` finds the user by the enterprise
``employeeNumber`` and PATCHes ``active`` to false; an inactive user is left alone (idempotent).

Config: ``base_url`` (the server root; SCIM lives under ``/scim/v2``); ``client_id``/``client_secret``
(OAuth client credentials at ``token_url``, default ``<base_url>/oauth2/v2.0/token``) or ``token`` (a
static bearer token, what Entra's outbound provisioning uses); ``page_size`` (default and max 100);
``timeout`` (seconds, default 30).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
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

SCIM = "/scim/v2"
TOKEN_PATH = "/oauth2/v2.0/token"
MAX_PAGE = 100  # the usual SCIM maxResults (and Entra's page size)
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BOUNDARY = timedelta(seconds=1)  # how far back each query reaches: one stamp resolution of the directory


def parse_error(body: Any) -> tuple[str, str]:
    """SCIM errors are ``{"schemas": [...Error], "status": "400", "scimType", "detail"}``; OAuth's ``{"error": str}``."""
    if isinstance(body, dict):
        if "detail" in body or "scimType" in body:
            return str(body.get("scimType") or ""), str(body.get("detail") or "")
        if isinstance(body.get("error"), str):
            return body["error"], str(body.get("error_description", ""))
    return "", json.dumps(body, default=str)[:500]


class StaticTokenClient(HttpClient):
    """The shared client with a fixed bearer token (Entra's "Secret Token"), no token endpoint."""

    def __init__(self, base_url: str, *, token: str, **kwargs: Any):
        super().__init__(base_url, token_url="", client_id="", client_secret="", **kwargs)
        self._static = token

    def token(self, *, refresh: bool = False) -> str:
        return self._static  # a 401 then fails again and becomes a ConfigError


class ScimConnector:
    kind = "scim"

    def __init__(self, config: dict[str, Any]):
        cfg = ConfigReader(self.kind, config)
        self.base_url = cfg.url("base_url")
        self.page_size = cfg.positive_int("page_size", MAX_PAGE, maximum=MAX_PAGE)
        common = {"error_parser": parse_error, "timeout": timeouts(cfg.timeout())}
        if cfg.has("token"):
            self.http: HttpClient = StaticTokenClient(self.base_url, token=cfg.text("token"), **common)
        elif cfg.has("client_id", "client_secret"):
            self.http = HttpClient(
                self.base_url,
                token_url=cfg.url("token_url", self.base_url + TOKEN_PATH),
                client_id=cfg.text("client_id"),
                client_secret=cfg.text("client_secret"),
                **common,
            )
        else:
            raise ConfigError("scim config needs 'token' or 'client_id'/'client_secret'")
        self._numbers: dict[str, str] = {}  # SCIM id -> employee number, learnt from every User read

    # --- contract ------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        try:
            body = self._list({"count": 1})
        except ConfigError as exc:
            return CheckResult(False, f"The SCIM server rejected the credentials: {exc}")
        except ConnectorError as exc:
            return CheckResult(False, f"The SCIM server is not reachable: {exc}")
        return CheckResult(True, f"SCIM 2.0 reachable at {self.base_url}{SCIM}; {body['totalResults']} user(s)")

    def discover(self) -> list[StreamSpec]:
        return [StreamSpec(name="employees", canonical="employee", cursor_field="last_modified")]

    def read(self, stream: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if stream != "employees":
            raise ValueError(f"scim has no stream {stream!r}; it offers employees")
        ts = mapping.parse_time((cursor or {}).get("last_modified"))
        seen = set((cursor or {}).get("seen") or [])
        anchor, start, first = ts, 1, True
        while True:
            params: dict[str, Any] = {
                "startIndex": start,
                "count": self.page_size,
                "sortBy": "meta.lastModified",
                "sortOrder": "ascending",
            }
            if anchor:
                params["filter"] = f'meta.lastModified gt "{mapping.format_time(anchor - BOUNDARY)}"'
            body = self._list(params)
            rows = body["Resources"]
            self._learn(rows)
            records, errors, previous = [], [], None
            for row in rows:
                row_ts, key = mapping.last_modified(row), mapping.seen_key(row)
                if row_ts is not None:
                    # Rows below the filter or out of order: the server ignored filter or sortBy,
                    # and the cursor would skip changes. Stop rather than lose data.
                    if (anchor and row_ts <= anchor - BOUNDARY) or (previous and row_ts < previous):
                        raise MalformedPayload(
                            f"Users are not sorted by meta.lastModified above the filter "
                            f"({mapping.format_time(row_ts)} after {params.get('filter', '')!r})"
                        )
                    previous = row_ts
                    if ts and (row_ts < ts or (row_ts == ts and key in seen)):
                        continue  # read before: below the cursor, or this version at the cursor's second
                record, error = mapping.map_record(row, self._numbers)
                if record is not None:
                    records.append(record)
                else:
                    errors.append(error)
                # Errors advance the cursor too: they are quarantined in page.errors, not lost.
                if row_ts is not None and (ts is None or row_ts > ts):
                    ts, seen = row_ts, {key}
                elif row_ts == ts:
                    seen.add(key)
            if records or errors or first:
                next_cursor = {"last_modified": mapping.format_time(ts), "seen": sorted(seen)} if ts else None
                yield Page(records, next_cursor, errors)
            first = False
            if not rows or start - 1 + len(rows) >= body["totalResults"]:
                return
            if ts != anchor:
                anchor, start = ts, 1
            else:
                start += len(rows)  # a whole page within one second: step through it

    def write(self, op: WriteOp, *, idempotency_key: str) -> WriteResult:
        if op.action == "deactivate_user":
            return self._deactivate(op.payload)
        raise ValueError(f"scim has no write {op.action!r}; it offers deactivate_user")

    # --- writes --------------------------------------------------------------------------------
    def _deactivate(self, payload: dict[str, Any]) -> WriteResult:
        number = str(payload.get("employee_number") or "")
        if not number:
            raise ValueError("deactivate_user needs employee_number")
        quoted = json.dumps(number)  # a SCIM filter value is a JSON string
        found = self._list({"filter": f"{mapping.ENTERPRISE}:employeeNumber eq {quoted}", "count": 2})["Resources"]
        if not found:
            raise Rejected(
                "UNKNOWN_EMPLOYEE",
                f"No directory user has employeeNumber {number}",
                field="employee_number",
                value=number,
            )
        if len(found) > 1:
            raise Rejected(
                "AMBIGUOUS_EMPLOYEE",
                f"Several directory users have employeeNumber {number}",
                field="employee_number",
                value=number,
            )
        user = found[0]
        user_id = mapping.text(user.get("id") if isinstance(user, dict) else "")
        if not user_id:
            raise MalformedPayload(f"a User without id: {json.dumps(user, default=str)[:200]}")
        try:
            inactive = "active" in user and not mapping.boolean(user["active"], "active")
        except mapping.MappingError as exc:
            raise MalformedPayload(f"User {user_id}: {exc}") from None
        if inactive:
            return WriteResult(external_id=user_id, status="inactive", message="already inactive")
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}
        self.http.json_of(
            self.http.request(
                "PATCH", f"{SCIM}/Users/{user_id}", json_body=body, headers={"Content-Type": "application/scim+json"}
            )
        )
        return WriteResult(external_id=user_id, status="inactive")

    # --- helpers -------------------------------------------------------------------------------
    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.request("GET", f"{SCIM}/Users", params=params)
        body = self.http.json_of(resp)
        total = body.get("totalResults") if isinstance(body, dict) else None
        # RFC 7644 §3.4.2: Resources may be left out when there are no results.
        resources = body.get("Resources", [] if total == 0 else None) if isinstance(body, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or not isinstance(resources, list):
            raise MalformedPayload(f"GET {resp.url}: not a SCIM ListResponse: {resp.text[:200]!r}")
        return {**body, "Resources": resources}

    def _learn(self, rows: list[Any]) -> None:
        """Remember every User's employee number, then look up the managers not met yet."""
        for row in rows:
            if isinstance(row, dict) and row.get("id"):
                self._numbers[str(row["id"])] = mapping.code_of(row)
        for boss in {mapping.manager_id(r) for r in rows} - set(self._numbers) - {""}:
            try:
                user = self.http.json_of(self.http.request("GET", f"{SCIM}/Users/{boss}"))
            except Rejected:
                user = None  # a manager who is gone: the record keeps no manager
            self._numbers[boss] = mapping.code_of(user) if isinstance(user, dict) else ""
