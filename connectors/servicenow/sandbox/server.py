"""A sandbox of ServiceNow's Table API for the approval engine (``sysapproval_approver``, ``sys_user``).

API routes (HTTP Basic ``workbench`` / ``sandbox-secret``, or a bearer token from
``POST /oauth_token.do`` with client credentials):

- ``GET   /api/now/table/{table}`` -- ``sysparm_query`` (encoded query: terms joined by ``^``;
  operators ``=``, ``!=``, ``>=``, ``>``, ``<=``, ``<``, ``IN``, ``NOT IN``, ``STARTSWITH``,
  ``LIKE``, ``ISEMPTY``, ``ISNOTEMPTY``; ``ORDERBY<field>`` / ``ORDERBYDESC<field>``; a literal
  ``^`` in a value is written ``^^``), ``sysparm_limit`` (default and max 10000),
  ``sysparm_offset``, ``sysparm_fields`` (dot-walking such as ``approver.employee_number`` works),
  ``sysparm_exclude_reference_link``. Answers ``{"result": [...]}`` with ``X-Total-Count`` and a
  ``Link`` header (first/prev/next/last).
- ``GET   /api/now/table/{table}/{sys_id}`` -> ``{"result": {...}}``.
- ``POST  /api/now/table/sysapproval_approver`` -> 201 ``{"result": {...}}``. ``approver`` is a
  sys_user sys_id or user_name; ``state`` defaults to ``requested``.
- ``PATCH /api/now/table/sysapproval_approver/{sys_id}`` -> ``{"result": {...}}``.

Sandbox routes (no auth): ``GET /`` (HTML console: a person acts as the approver),
``POST /sandbox/decide/{sys_id}`` (form ``state``=approved|rejected, ``comments``; redirects to
``/``), ``POST /sandbox/autodecide {"after_seconds": N|null, "reject_over": "<amount>"|null}``,
plus the kit's ``/sandbox/health``, ``/sandbox/faults``, ``/sandbox/stats``.

Where the shapes come from:

- From the fixtures (``shared/reference/servicenow/table-api-fixtures``): the ``{"result": ...}``
  envelope (a list for queries, an object for one record and for PATCH answers), reference
  fields as ``{"link", "value"}``, every value a string (``"price": "100.99"``, ``"quantity": "2"``),
  an empty result as ``{"result": []}``, ``state`` values ``approved``/``rejected`` in PATCH answers.
- From ServiceNow's public Table API documentation: the routes and ``sysparm_*`` parameters,
  encoded query syntax, ``X-Total-Count`` and ``Link`` headers, 201 on insert, the error envelope
  ``{"error": {"message", "detail"}, "status": "failure"}`` with its usual texts ("No Record
  found", "User Not Authenticated", "Operation Failed" for a 403 when a business rule aborts an
  update), ``sysapproval_approver``'s fields and choice values (``requested``, ``approved``,
  ``rejected``, ``cancelled``, ``not requested``, ``not_required``), ``sys_mod_count``, date-times
  as ``YYYY-MM-DD HH:MM:SS`` UTC, ``/oauth_token.do``.

Sandbox choices (not ServiceNow behaviour):

- An encoded query with an unknown field or operator, ``^OR`` or ``^NQ`` answers 400. Real
  instances silently ignore invalid terms (and so may return every row); failing loudly finds
  connector bugs.
- ``comments`` is a plain string holding the latest comment. Real instances keep a journal and
  return it only with display values.
- ``u_correlation_id``, ``u_document_number``, ``u_amount``, ``u_currency`` and
  ``short_description`` are custom/added fields, as a customer would add them to the table.
- No approval engine sequencing: ``order`` is stored but does not move ``not requested`` records
  to ``requested``. A decided record (approved/rejected/cancelled) cannot change to another state
  (403 "Operation Failed", as a business rule abort); setting the same state again is a no-op.
- ``sys_updated_on`` is strictly increasing (one second apart at worst), so that incremental
  reads are easy to test; on a real instance several records share a second. The sandbox clock
  starts after the seeded history, even when ``today`` is in the future.
- ``sysparm_display_value`` other than ``false`` is ignored (values are always raw).

Modules: this one routes, authenticates, keeps the clock and the store, renders records and pages
(``X-Total-Count``, ``Link``); ``query.py`` holds the tables, date-times, error envelope and the
encoded query language; ``seed.py`` the starting users and approval history; ``rules.py`` what a
write may set and the state machine (and the demo's autodecide verdicts); ``console.py`` the HTML
console.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlencode

from connectors.sandboxkit.kit import HttpError, Request, Sandbox
from connectors.sandboxkit.world import stable_id

from . import console, rules
from .query import (
    APPROVALS,
    NUMERIC,
    REFERENCES,
    SCHEMA,
    USERS,
    bad_request,
    check_field,
    error,
    matches,
    number,
    parse_query,
    parse_time,
    sn_time,
)
from .seed import API_USER, seed_tables

MAX_LIMIT = 10000  # the Table API's default and usual maximum page


class ServiceNowSandbox(Sandbox):
    name = "servicenow"
    token_path = "/oauth_token.do"

    def __init__(self, *, data_path: str | None = None, seed: int = 42, faults: dict | None = None, **options: Any):
        self.lock = threading.RLock()
        super().__init__(data_path=data_path, seed=seed, faults=faults, **options)
        # The clock starts after the newest stored record: new writes always sort after the
        # history, even when the seed's ``today`` lies ahead of the real date.
        newest = max((r["sys_updated_on"] for t in (APPROVALS, USERS) for r in self.store.all(t)), default="")
        self._last = parse_time(newest) if newest else datetime.now(UTC).replace(microsecond=0)
        self._offset = max(timedelta(0), self._last + timedelta(seconds=1) - datetime.now(UTC))

    # --- setup and seed ---------------------------------------------------------------------
    def setup(self) -> None:
        table = r"/api/now/table/(?P<table>[a-z0-9_]+)"
        self.route("GET", table, self._list)
        self.route("POST", table, self._create)
        self.route("GET", table + r"/(?P<sys_id>[^/]+)", self._get)
        self.route("PATCH", table + r"/(?P<sys_id>[^/]+)", self._patch)
        self.route("GET", r"/", self._console, auth=False)
        self.route("POST", r"/sandbox/decide/(?P<sys_id>[^/]+)", self._console_decide, auth=False)
        self.route("POST", r"/sandbox/autodecide", self._set_autodecide, auth=False)

    @property
    def today(self) -> date:
        value = self.options.get("today")
        return value if isinstance(value, date) else date.fromisoformat(value) if value else date.today()

    def seed_store(self) -> None:
        users, approvals = seed_tables(
            seed=self.seed,
            today=self.today,
            n_employees=int(self.options.get("n_employees") or 200),
            n_lines=int(self.options.get("n_lines") or 2000),
        )
        self.store.put_many(USERS, users)
        self.store.put_many(APPROVALS, approvals)

    # --- auth, errors, clock ----------------------------------------------------------------
    def error_body(self, status: int, code: str, message: str) -> Any:
        return error(message, code)

    def check_auth(self, req: Request) -> None:
        header = req.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user = password = ""
            if (user, password) != (API_USER, self.client_secret):
                raise HttpError(401, error("User Not Authenticated", "Required to provide Auth information"))
        else:
            try:
                super().check_auth(req)
            except HttpError:
                raise HttpError(401, error("User Not Authenticated", "Required to provide Auth information")) from None
        self._autodecide()  # "on the next API request": the demo flows without a timer thread

    def _now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self._offset

    def _stamp(self) -> str:
        """A strictly increasing sys_updated_on, so incremental reads see every change."""
        with self.lock:
            now = self._now()
            self._last = now if now > self._last else self._last + timedelta(seconds=1)
            return sn_time(self._last)

    # --- reading ----------------------------------------------------------------------------
    def _table(self, req: Request) -> str:
        table = req.match["table"]
        if table not in SCHEMA:
            raise bad_request(f"Invalid table {table}")
        return table

    def _value(self, table: str, rec: dict, path: str) -> str:
        """A field's raw value, following references for dot-walked paths."""
        head, _, rest = path.partition(".")
        value = rec.get(head, "")
        if not rest:
            return value
        target = self.store.get(REFERENCES[(table, head)], value) if value else None
        return self._value(REFERENCES[(table, head)], target, rest) if target else ""

    def _render(self, table: str, rec: dict, req: Request, fields: list[str] | None = None) -> dict:
        host = f"http://{req.headers.get('Host', '127.0.0.1')}"
        plain = req.query.get("sysparm_exclude_reference_link", "").lower() == "true"
        out = {}
        for field in fields or ["sys_id", *[f for f in SCHEMA[table] if f != "sys_id"]]:
            try:
                check_field(table, field)
            except HttpError:
                continue  # unknown fields are left out, as on an instance
            value = self._value(table, rec, field)
            ref = REFERENCES.get((table, field))
            out[field] = (
                {"link": f"{host}/api/now/table/{ref}/{value}", "value": value}
                if ref and value and not plain
                else value
            )
        return out

    def _list(self, req: Request):
        table = self._table(req)
        filters, order = parse_query(req.query.get("sysparm_query", ""), table)
        limit, offset = self._int(req, "sysparm_limit", MAX_LIMIT), self._int(req, "sysparm_offset", 0)
        limit = max(1, min(limit, MAX_LIMIT))
        with self.lock:
            rows = [
                r
                for r in self.store.all(table)
                if all(matches(self._value(table, r, f), op, v, f.split(".")[-1] in NUMERIC) for f, op, v in filters)
            ]
        rows.sort(key=lambda r: r["sys_id"])  # a stable base order, so offset paging is repeatable
        for field, desc in reversed(order):
            rows.sort(key=lambda r, f=field: self._sort_key(table, r, f), reverse=desc)
        fields = [f.strip() for f in req.query.get("sysparm_fields", "").split(",") if f.strip()] or None
        page = [self._render(table, r, req, fields) for r in rows[offset : offset + limit]]
        return 200, {"result": page}, self._paging_headers(req, len(rows), limit, offset)

    def _sort_key(self, table: str, rec: dict, field: str) -> Any:
        value = self._value(table, rec, field)
        if field.split(".")[-1] in NUMERIC:
            return number(value) if value and number(value) is not None else Decimal("-Infinity")
        return value

    def _paging_headers(self, req: Request, total: int, limit: int, offset: int) -> dict:
        base = f"http://{req.headers.get('Host', '127.0.0.1')}{req.path}"
        keep = {k: v for k, v in req.query.items() if k not in ("sysparm_offset", "sysparm_limit")}

        def link(rel: str, at: int) -> str:
            return f'<{base}?{urlencode({**keep, "sysparm_limit": limit, "sysparm_offset": at})}>;rel="{rel}"'

        last = max(0, (total - 1) // limit * limit)
        links = [link("first", 0)]
        if offset > 0:
            links.append(link("prev", max(0, offset - limit)))
        if offset + limit < total:
            links.append(link("next", offset + limit))
        links.append(link("last", last))
        return {"X-Total-Count": str(total), "Link": ",".join(links)}

    def _int(self, req: Request, name: str, default: int) -> int:
        raw = req.query.get(name, "")
        if raw == "":
            return default
        if not raw.isdigit():
            raise bad_request(f"Invalid value for {name}: {raw}")
        return int(raw)

    def _record(self, table: str, sys_id: str) -> dict:
        rec = self.store.get(table, sys_id)
        if rec is None:
            raise HttpError(404, error("No Record found", "Record doesn't exist or ACL restricts the record retrieval"))
        return rec

    def _get(self, req: Request):
        table = self._table(req)
        fields = [f.strip() for f in req.query.get("sysparm_fields", "").split(",") if f.strip()] or None
        return {"result": self._render(table, self._record(table, req.match["sys_id"]), req, fields)}

    # --- writing ----------------------------------------------------------------------------
    def _writable_table(self, req: Request) -> str:
        table = self._table(req)
        if table != APPROVALS:
            raise HttpError(403, error("Operation Failed", f"The sandbox does not accept writes to {table}"))
        return table

    def _body(self, req: Request) -> dict:
        try:
            body = req.json()
        except HttpError:
            raise bad_request("Exception while reading request", "The payload is not valid JSON.") from None
        if not isinstance(body, dict):
            raise bad_request("Exception while reading request", "The payload must be a JSON object.")
        return body

    def _user_id(self, ref: str) -> str:
        if self.store.get(USERS, ref):
            return ref
        found = [u["sys_id"] for u in self.store.all(USERS) if u["user_name"] == ref]
        if not found:
            raise bad_request("Invalid reference", f"approver '{ref}' is not a sys_user sys_id or user_name")
        return found[0]

    def _create(self, req: Request):
        table = self._writable_table(req)
        values = rules.clean(self._body(req), self._user_id)
        if not values.get("approver"):
            raise bad_request("Mandatory field missing", "approver")
        with self.lock:
            ts = self._stamp()
            sys_id = stable_id("sn-approval", self.seed, "api", ts, len(self.store.all(table))).lower()
            rec = {f: "" for f in SCHEMA[table]}
            rec.update(
                {
                    "state": "requested",
                    "source_table": "x_coupa_requisition",
                    **values,
                    "sys_id": sys_id,
                    "sys_created_on": ts,
                    "sys_created_by": API_USER,
                    "sys_updated_on": ts,
                    "sys_updated_by": API_USER,
                    "sys_mod_count": "0",
                }
            )
            self.store.put(table, sys_id, rec)
            self.count("approvals.created")
        return 201, {"result": self._render(table, rec, req)}, {"Location": f"/api/now/table/{table}/{sys_id}"}

    def _patch(self, req: Request):
        table = self._writable_table(req)
        values = rules.clean(self._body(req), self._user_id)
        rec = self._update(req.match["sys_id"], values, by=API_USER)
        return {"result": self._render(table, rec, req)}

    def _update(self, sys_id: str, values: dict[str, str], *, by: str) -> dict:
        with self.lock:
            rec = dict(self._record(APPROVALS, sys_id))
            rules.check_transition(rec, values.get("state", rec["state"]))
            changed = {k: v for k, v in values.items() if rec.get(k) != v}
            if not changed:
                return rec  # nothing changed: no update, so sys_updated_on and sys_mod_count stay
            rec.update(changed)
            rec.update(
                {
                    "sys_updated_on": self._stamp(),
                    "sys_updated_by": by,
                    "sys_mod_count": str(int(rec["sys_mod_count"] or 0) + 1),
                }
            )
            self.store.put(APPROVALS, sys_id, rec)
            if "state" in changed:
                self.count(f"approvals.{rec['state']}")
            return rec

    # --- autodecide -------------------------------------------------------------------------
    def _set_autodecide(self, req: Request):
        setting = rules.autodecide_setting(self._body(req))
        self.store.put("meta", "autodecide", setting)
        return setting

    def _autodecide(self) -> None:
        setting = self.store.get("meta", "autodecide") or {}
        if setting.get("after_seconds") is None:
            return
        limit = number(setting["reject_over"]) if setting.get("reject_over") else None
        with self.lock:
            # Sandbox time never runs behind the last stamp (stamps can run ahead under bursts of writes).
            cutoff = sn_time(max(self._now(), self._last) - timedelta(seconds=setting["after_seconds"]))
            due = [r for r in self.store.all(APPROVALS) if r["state"] == "requested" and r["sys_created_on"] <= cutoff]
            for rec in sorted(due, key=lambda r: r["sys_created_on"]):
                self._update(rec["sys_id"], rules.auto_decision(rec, limit), by=self._user_name(rec["approver"]))

    def _user_name(self, sys_id: str) -> str:
        return (self.store.get(USERS, sys_id) or {}).get("user_name", "")

    # --- console ----------------------------------------------------------------------------
    def _console_decide(self, req: Request):
        form = req.form()
        state = form.get("state", "")
        if state not in rules.CONSOLE_DECISIONS:
            return 400, f"<p>state must be approved or rejected, not {escape(state)}</p>"
        try:
            rec = self._record(APPROVALS, req.match["sys_id"])
            self._update(
                rec["sys_id"],
                {"state": state, "comments": form.get("comments", "")},
                by=self._user_name(rec["approver"]),
            )
        except HttpError as exc:
            return exc.status, f"<p>{escape(str(exc.body['error']))}</p><p><a href='/'>back</a></p>"
        return 303, "", {"Location": "/"}

    def _console(self, req: Request):
        with self.lock:
            rows = sorted(self.store.all(APPROVALS), key=lambda r: r["sys_updated_on"], reverse=True)
            setting = self.store.get("meta", "autodecide") or {}
        return console.render(rows, lambda sys_id: self.store.get(USERS, sys_id) or {}, setting)

    def stats_payload(self) -> dict:
        with self.lock:
            approvals = self.store.all(APPROVALS)
        by_state: dict[str, int] = {}
        for r in approvals:
            by_state[r["state"]] = by_state.get(r["state"], 0) + 1
        return {
            **self.stats,
            "approvals": len(approvals),
            "by_state": by_state,
            "by_correlation_id": {r["u_correlation_id"]: r["sys_id"] for r in approvals if r["u_correlation_id"]},
        }
