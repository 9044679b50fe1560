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
"""

from __future__ import annotations

import base64
import re
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any
from urllib.parse import urlencode

from connectors.sandboxkit.kit import HttpError, Request, Sandbox
from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import build_world, stable_id

APPROVALS, USERS = "sysapproval_approver", "sys_user"
STATES = ("requested", "approved", "rejected", "cancelled", "not requested", "not_required")
FINAL = {"approved", "rejected", "cancelled"}
SYS_FIELDS = ["sys_id", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by", "sys_mod_count"]
SCHEMA = {
    APPROVALS: ["approver", "state", "comments", "due_date", "order", "source_table", "document_id", "sysapproval",
                "u_correlation_id", "u_document_number", "u_amount", "u_currency", "short_description", *SYS_FIELDS],
    USERS: ["user_name", "employee_number", "first_name", "last_name", "name", "email", "title", "active",
            "manager", *SYS_FIELDS],
}
NUMERIC = {"u_amount", "order", "sys_mod_count"}  # compared and sorted as numbers, as their field types are
REFERENCES = {(APPROVALS, "approver"): USERS, (USERS, "manager"): USERS}
MAX_LIMIT = 10000  # the Table API's default and usual maximum page
FMT = "%Y-%m-%d %H:%M:%S"  # ServiceNow date-times: UTC, no "T", no zone
API_USER = "workbench"  # the integration user behind Basic auth (and sys_created_by of API writes)
TERM = re.compile(r"(?P<field>[a-z_][a-z0-9_.]*)(?P<op>NOT IN|ISNOTEMPTY|ISEMPTY|STARTSWITH|LIKE|IN|!=|>=|<=|=|>|<)"
                  r"(?P<value>.*)", re.S)
CARET = re.compile(r"(?<!\^)\^(?!\^)")  # a lone ^ joins terms; ^^ is a literal caret


def sn_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime(FMT)


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, FMT).replace(tzinfo=UTC)


def _number(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError):
        return None


def parse_query(query: str, table: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, bool]]]:
    """An encoded query -> (filters [(field, op, value)], order [(field, descending)])."""
    filters, order = [], []
    for raw in CARET.split(query or ""):
        term = raw.replace("^^", "^")
        if not term or term == "EQ":
            continue
        if term.startswith("ORDERBYDESC"):
            order.append((term[11:], True))
        elif term.startswith("ORDERBY"):
            order.append((term[7:], False))
        elif term.startswith(("OR", "NQ")):
            raise bad_request("Invalid query: OR and NQ are not supported by this sandbox", term)
        elif m := TERM.fullmatch(term):
            filters.append((m["field"], m["op"], m["value"]))
        else:
            raise bad_request("Invalid query", f"Cannot parse the term '{term}'")
    for field, *_ in [*filters, *order]:
        check_field(table, field)
    return filters, order


def check_field(table: str, path: str) -> None:
    """Every part of a dot-walked path must be a field, and all but the last a reference."""
    for i, part in enumerate(path.split(".")):
        if part not in SCHEMA[table]:
            raise bad_request("Invalid query", f"Unknown field '{path}' on table {table}")
        if i < path.count("."):
            table = REFERENCES.get((table, part)) or ""
            if not table:
                raise bad_request("Invalid query", f"'{part}' is not a reference field")


def matches(value: str, op: str, arg: str, numeric: bool = False) -> bool:
    if op == "=":
        return value == arg
    if op == "!=":
        return value != arg
    if op in ("IN", "NOT IN"):
        return (value in arg.split(",")) == (op == "IN")
    if op == "ISEMPTY":
        return value == ""
    if op == "ISNOTEMPTY":
        return value != ""
    if op == "STARTSWITH":
        return value.startswith(arg)
    if op == "LIKE":
        return arg.lower() in value.lower()
    # Ranges: numeric fields as numbers, everything else as text, which is right for
    # "YYYY-MM-DD HH:MM:SS". An empty value never satisfies a range (as on an instance).
    if value == "":
        return False
    a, b = (_number(value), _number(arg)) if numeric else (None, None)
    left, right = (a, b) if a is not None and b is not None else (value, arg)
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


def bad_request(message: str, detail: str | None = None) -> HttpError:
    return HttpError(400, error(message, detail))


def error(message: str, detail: str | None = None) -> dict:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


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
        world = build_world(seed=self.seed, today=self.today, n_employees=int(self.options.get("n_employees") or 200),
                            n_lines=int(self.options.get("n_lines") or 2000))
        p2p = build_p2p(world, seed=self.seed)
        start = datetime.combine(self.today - timedelta(days=60), datetime.min.time(), UTC)
        stamp = iter(sn_time(start + timedelta(minutes=i)) for i in range(10**6))
        users: dict[str, dict] = {}
        by_code: dict[str, str] = {}
        # Non-employee accounts every instance has: they have no employee_number.
        people = [("admin", "", "System", "Administrator", "admin@northwind.example", "true"),
                  (API_USER, "", "Workbench", "Integration", "workbench@northwind.example", "true")]
        people += [(e.email.split("@")[0], e.code, e.first, e.last, e.email,
                    "true" if e.status == "Active" else "false") for e in world.employees]
        for user_name, code, first, last, email, active in people:
            sys_id = stable_id("sn-user", self.seed, user_name).lower()
            ts = next(stamp)
            users[sys_id] = {"sys_id": sys_id, "user_name": user_name, "employee_number": code, "first_name": first,
                             "last_name": last, "name": f"{first} {last}", "email": email, "title": "",
                             "active": active, "manager": "", "sys_created_on": ts, "sys_created_by": "admin",
                             "sys_updated_on": ts, "sys_updated_by": "admin", "sys_mod_count": "0"}
            if code:
                by_code[code] = sys_id
        for code, manager in p2p.managers.items():
            if code in by_code and manager in by_code:
                users[by_code[code]]["manager"] = by_code[manager]
        self.store.put_many(USERS, users)

        # Approval history for the first requisitions: the cost center owner approves first, the
        # owner's manager second. Ordered ones were approved; waiting ones are requested (a
        # second level "not requested" behind them) or were rejected.
        approvals: dict[str, dict] = {}
        comments = ["Approved within budget.", "OK.", "Approved; please use the framework contract next time."]
        waiting = 0
        for req in sorted(p2p.requisitions, key=lambda r: (r.submitted, r.number))[:14]:
            owner = p2p.cost_center_owners.get((req.entity, req.lines[0].cost_center)) or p2p.managers.get(req.requester)
            chain = [c for c in (owner, p2p.managers.get(owner or "")) if c in by_code]
            if req.status == "ordered":
                states = ["approved"] * len(chain)
            else:
                waiting += 1
                states = (["requested", "not requested"] if waiting <= 2 else ["rejected", "not requested"])[:len(chain)]
            created = datetime.combine(req.submitted, datetime.min.time(), UTC) + timedelta(hours=9)
            for order, (code, state) in enumerate(zip(chain, states, strict=False), start=1):
                sys_id = stable_id("sn-approval", self.seed, req.number, order).lower()
                decided = created + timedelta(hours=3 * order)
                text = {"approved": comments[len(approvals) % 3],
                        "rejected": "Rejected: no budget left on this cost center this quarter."}.get(state, "")
                approvals[sys_id] = {
                    "sys_id": sys_id, "approver": by_code[code], "state": state, "comments": text,
                    "due_date": sn_time(created + timedelta(days=5)), "order": str(order),
                    "source_table": "x_coupa_requisition", "document_id": str(req.coupa_id), "sysapproval": "",
                    "u_correlation_id": f"seed:requisition:{req.number}:{order}", "u_document_number": req.number,
                    "u_amount": str(req.total), "u_currency": req.currency,
                    "short_description": f"Requisition {req.number}: {req.title}",
                    "sys_created_on": sn_time(created), "sys_created_by": API_USER,
                    "sys_updated_on": sn_time(decided if state in FINAL else created),
                    "sys_updated_by": users[by_code[code]]["user_name"] if state in FINAL else API_USER,
                    "sys_mod_count": "1" if state in FINAL else "0",
                }
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
            out[field] = {"link": f"{host}/api/now/table/{ref}/{value}", "value": value} if ref and value and not plain \
                else value
        return out

    def _list(self, req: Request):
        table = self._table(req)
        filters, order = parse_query(req.query.get("sysparm_query", ""), table)
        limit, offset = self._int(req, "sysparm_limit", MAX_LIMIT), self._int(req, "sysparm_offset", 0)
        limit = max(1, min(limit, MAX_LIMIT))
        with self.lock:
            rows = [r for r in self.store.all(table)
                    if all(matches(self._value(table, r, f), op, v, f.split(".")[-1] in NUMERIC)
                           for f, op, v in filters)]
        rows.sort(key=lambda r: r["sys_id"])  # a stable base order, so offset paging is repeatable
        for field, desc in reversed(order):
            rows.sort(key=lambda r, f=field: self._sort_key(table, r, f), reverse=desc)
        fields = [f.strip() for f in req.query.get("sysparm_fields", "").split(",") if f.strip()] or None
        page = [self._render(table, r, req, fields) for r in rows[offset:offset + limit]]
        return 200, {"result": page}, self._paging_headers(req, len(rows), limit, offset)

    def _sort_key(self, table: str, rec: dict, field: str) -> Any:
        value = self._value(table, rec, field)
        if field.split(".")[-1] in NUMERIC:
            return _number(value) if value and _number(value) is not None else Decimal("-Infinity")
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

    def _clean(self, body: dict) -> dict[str, str]:
        """Writable fields as strings (ServiceNow stores text); references and choices validated."""
        values: dict[str, str] = {}
        for key, raw in body.items():
            if key not in SCHEMA[APPROVALS] or key.startswith("sys_"):
                continue  # unknown and system fields are ignored, as on an instance
            values[key] = "" if raw is None else str(raw).lower() if isinstance(raw, bool) else str(raw)
        if "approver" in values:
            values["approver"] = self._user_id(values["approver"])
        if "state" in values and values["state"] not in STATES:
            raise bad_request("Invalid value for state", f"'{values['state']}' is not one of {', '.join(STATES)}")
        if values.get("u_amount") and _number(values["u_amount"]) is None:
            raise bad_request("Invalid value for u_amount", f"'{values['u_amount']}' is not a decimal number")
        if values.get("due_date") and len(values["due_date"]) == 10:
            values["due_date"] += " 00:00:00"
        return values

    def _user_id(self, ref: str) -> str:
        if self.store.get(USERS, ref):
            return ref
        found = [u["sys_id"] for u in self.store.all(USERS) if u["user_name"] == ref]
        if not found:
            raise bad_request("Invalid reference", f"approver '{ref}' is not a sys_user sys_id or user_name")
        return found[0]

    def _create(self, req: Request):
        table = self._writable_table(req)
        values = self._clean(self._body(req))
        if not values.get("approver"):
            raise bad_request("Mandatory field missing", "approver")
        with self.lock:
            ts = self._stamp()
            sys_id = stable_id("sn-approval", self.seed, "api", ts, len(self.store.all(table))).lower()
            rec = {f: "" for f in SCHEMA[table]}
            rec.update({"state": "requested", "source_table": "x_coupa_requisition", **values, "sys_id": sys_id,
                        "sys_created_on": ts, "sys_created_by": API_USER, "sys_updated_on": ts,
                        "sys_updated_by": API_USER, "sys_mod_count": "0"})
            self.store.put(table, sys_id, rec)
            self.count("approvals.created")
        return 201, {"result": self._render(table, rec, req)}, {"Location": f"/api/now/table/{table}/{sys_id}"}

    def _patch(self, req: Request):
        table = self._writable_table(req)
        values = self._clean(self._body(req))
        rec = self._update(req.match["sys_id"], values, by=API_USER)
        return {"result": self._render(table, rec, req)}

    def _update(self, sys_id: str, values: dict[str, str], *, by: str) -> dict:
        with self.lock:
            rec = dict(self._record(APPROVALS, sys_id))
            new_state = values.get("state", rec["state"])
            if rec["state"] in FINAL and new_state != rec["state"]:
                # What an instance answers when a business rule aborts the update.
                raise HttpError(403, error("Operation Failed",
                                           f"The approval is already {rec['state']}; it cannot become {new_state}"))
            changed = {k: v for k, v in values.items() if rec.get(k) != v}
            if not changed:
                return rec  # nothing changed: no update, so sys_updated_on and sys_mod_count stay
            rec.update(changed)
            rec.update({"sys_updated_on": self._stamp(), "sys_updated_by": by,
                        "sys_mod_count": str(int(rec["sys_mod_count"] or 0) + 1)})
            self.store.put(APPROVALS, sys_id, rec)
            if "state" in changed:
                self.count(f"approvals.{rec['state']}")
            return rec

    # --- autodecide -------------------------------------------------------------------------
    def _set_autodecide(self, req: Request):
        body = self._body(req)
        after, limit = body.get("after_seconds"), body.get("reject_over")
        if after is not None and (not isinstance(after, int | float | Decimal) or after < 0):
            raise bad_request("after_seconds must be a number >= 0 or null")
        if limit is not None and _number(str(limit)) is None:
            raise bad_request("reject_over must be an amount or null")
        setting = {"after_seconds": None if after is None else float(after),
                   "reject_over": None if limit is None else str(limit)}
        self.store.put("meta", "autodecide", setting)
        return setting

    def _autodecide(self) -> None:
        setting = self.store.get("meta", "autodecide") or {}
        if setting.get("after_seconds") is None:
            return
        limit = _number(setting["reject_over"]) if setting.get("reject_over") else None
        with self.lock:
            # Sandbox time never runs behind the last stamp (stamps can run ahead under bursts of writes).
            cutoff = sn_time(max(self._now(), self._last) - timedelta(seconds=setting["after_seconds"]))
            due = [r for r in self.store.all(APPROVALS) if r["state"] == "requested" and r["sys_created_on"] <= cutoff]
            for rec in sorted(due, key=lambda r: r["sys_created_on"]):
                amount = _number(rec["u_amount"]) if rec["u_amount"] else None
                if limit is not None and amount is not None and amount > limit:
                    values = {"state": "rejected", "comments": f"Rejected automatically: {rec['u_amount']} "
                                                               f"{rec['u_currency']} is over the limit of {limit}."}
                else:
                    values = {"state": "approved", "comments": "Approved automatically by the sandbox."}
                self._update(rec["sys_id"], values, by=self._user_name(rec["approver"]))

    def _user_name(self, sys_id: str) -> str:
        return (self.store.get(USERS, sys_id) or {}).get("user_name", "")

    # --- console ----------------------------------------------------------------------------
    def _console_decide(self, req: Request):
        form = req.form()
        state = form.get("state", "")
        if state not in ("approved", "rejected"):
            return 400, f"<p>state must be approved or rejected, not {escape(state)}</p>"
        try:
            rec = self._record(APPROVALS, req.match["sys_id"])
            self._update(rec["sys_id"], {"state": state, "comments": form.get("comments", "")},
                         by=self._user_name(rec["approver"]))
        except HttpError as exc:
            return exc.status, f"<p>{escape(str(exc.body['error']))}</p><p><a href='/'>back</a></p>"
        return 303, "", {"Location": "/"}

    def _console(self, req: Request):
        e = escape
        with self.lock:
            rows = sorted(self.store.all(APPROVALS), key=lambda r: r["sys_updated_on"], reverse=True)
            setting = self.store.get("meta", "autodecide") or {}
        body = []
        for r in rows:
            user = self.store.get(USERS, r["approver"]) or {}
            actions = ""
            if r["state"] == "requested":
                actions = "".join(
                    f'<form method=post action="/sandbox/decide/{e(r["sys_id"])}" style="display:inline">'
                    f'<input type=hidden name=state value={s}><input name=comments placeholder="comment" size=14>'
                    f"<button>{label}</button></form> " for s, label in (("approved", "Approve"), ("rejected", "Reject")))
            body.append(
                f"<tr><td>{e(user.get('name', ''))}<br><small>{e(user.get('employee_number', ''))}</small></td>"
                f"<td>{e(r['u_document_number'])}<br><small>{e(r['short_description'])}</small></td>"
                f"<td class=num>{e(r['u_amount'])} {e(r['u_currency'])}</td><td>{e(r['state'])}</td>"
                f"<td>{e(r['due_date'][:10])}</td><td>{e(r['comments'])}</td><td>{e(r['sys_updated_on'])}</td>"
                f"<td>{actions}</td></tr>")
        auto = "off" if setting.get("after_seconds") is None else \
            f"after {setting['after_seconds']:g} s, rejecting over {setting.get('reject_over') or 'no limit'}"
        return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>ServiceNow sandbox</title>"
                "<style>body{font:14px system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
                "td,th{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}"
                ".num{text-align:right}small{color:#5b6b7b}</style></head><body>"
                "<h1>ServiceNow sandbox &mdash; approvals</h1>"
                f"<p><small>{len(rows)} approvals. Autodecide: {e(auto)}.</small></p>"
                "<table><thead><tr><th>Approver</th><th>Document</th><th class=num>Amount</th><th>State</th>"
                "<th>Due</th><th>Comments</th><th>Updated</th><th></th></tr></thead><tbody>"
                + "".join(body) + "</tbody></table></body></html>")

    def stats_payload(self) -> dict:
        with self.lock:
            approvals = self.store.all(APPROVALS)
        by_state: dict[str, int] = {}
        for r in approvals:
            by_state[r["state"]] = by_state.get(r["state"], 0) + 1
        return {**self.stats, "approvals": len(approvals), "by_state": by_state,
                "by_correlation_id": {r["u_correlation_id"]: r["sys_id"] for r in approvals if r["u_correlation_id"]}}


if __name__ == "__main__":  # python -m connectors.servicenow.sandbox.server [port]
    import sys

    from connectors.sandboxkit.kit import serve

    serve(ServiceNowSandbox(seed=42), port=int(sys.argv[1]) if len(sys.argv) > 1 else 8104)
