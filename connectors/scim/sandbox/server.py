"""A SCIM 2.0 identity-provider sandbox: the people directory, in the shape Microsoft Entra provisions.

API routes (bearer token from ``POST /oauth2/v2.0/token`` with client credentials, or the static
secret token ``sandbox-scim-token`` -- Entra's outbound provisioning sends one fixed "Secret Token"):

- ``GET   /scim/v2/Users`` -- ``startIndex`` (1-based), ``count`` (default and max 100), ``filter``
  (``attr op value`` terms joined by ``and``; ops ``eq ne co sw ew gt ge lt le pr``; attributes
  ``id``, ``externalId``, ``userName``, ``displayName``, ``emails.value``, ``active``,
  ``meta.created``, ``meta.lastModified`` and the enterprise ``employeeNumber``, ``costCenter``,
  ``organization``, ``department``, ``manager.value`` by full URN path), ``sortBy``
  (``meta.lastModified``, ``meta.created``, ``userName``, ``id``) and ``sortOrder``.
- ``GET   /scim/v2/Users/{id}``; ``POST /scim/v2/Users`` (201; 409 ``uniqueness`` on a taken userName);
  ``PATCH /scim/v2/Users/{id}`` (``PatchOp``: add/replace/remove of ``active``, ``displayName``,
  ``externalId``, ``userName``, ``name.*``, ``emails[type eq "work"].value`` and the enterprise
  attributes; with or without ``path``).
- ``GET   /scim/v2/ServiceProviderConfig``, ``/ResourceTypes[/User]``, ``/Schemas[/{urn}]`` (static).

Sandbox routes (no auth): ``GET /`` (HTML console), ``POST /sandbox/deactivate
{"employee_number"}`` (what HR offboarding does: ``active`` becomes false), ``POST /sandbox/touch
{"employee_number"}`` (a rewrite without change: only ``meta.lastModified``/``version`` move; no
body touches everyone), plus the kit's ``/sandbox/health``, ``/sandbox/faults``, ``/sandbox/stats``.

Where the shapes come from:

- RFC 7643/7644 samples (``shared/reference/scim/rfc-samples``): the User resource with the
  enterprise extension keyed by its URN (8.3), ``meta`` {resourceType, created, lastModified,
  location, version} with ``W/"..."`` versions, ``manager`` {value, $ref, displayName}, the
  ``ListResponse`` {schemas, totalResults, itemsPerPage, startIndex, Resources} (3.4.2, 4), the
  ``PatchOp`` body with ``Operations`` (3.5.2), errors {schemas: [...Error], status as a string,
  scimType, detail} (3.12), 201 + ``Location`` on create (3.3), the ServiceProviderConfig,
  ResourceType and Schema documents (8.5-8.7, trimmed to what the sandbox supports).
- RFC 7644 text (not a sample file): the filter grammar and its ``meta.lastModified gt "..."``
  example (§3.4.2.2), ``startIndex``/``count`` semantics (§3.4.2.4), ``sortBy``/``sortOrder``.
- Microsoft Entra's public SCIM docs ("Tutorial: Develop and plan provisioning for a SCIM
  endpoint" and "Known issues and resolutions with SCIM 2.0 protocol compliance"): the filters
  Entra sends (``userName eq``, ``externalId eq``), PATCH ops capitalized (``"Replace"``) with
  booleans as strings (``"False"``), manager set with a bare id as ``value``, path-less PATCH with
  a value object, a static bearer "Secret Token", and the ``/oauth2/v2.0/token`` path of Entra's
  token endpoint. Entra pushes changes and does not itself query ``meta.lastModified``: that filter
  is how a reader (our connector) pulls the directory.

Sandbox choices (not in either source):

- ``meta.lastModified`` has whole seconds and never goes back; changes in the same second share
  it (as in real directories), so a connector must handle the boundary. The clock starts after the
  seeded history, even when ``today`` lies ahead.
- ``meta.version`` changes on every write, including a touch; a PATCH that changes nothing is no
  write (lastModified and version stay).
- ``or``, ``not``, brackets and unknown attributes in a filter answer 400 ``invalidFilter``;
  ``attributes``/``excludedAttributes`` are ignored (full resources always); no Groups, Bulk,
  DELETE, PUT or If-Match (ServiceProviderConfig says so).
"""

from __future__ import annotations

import copy
import json
import operator
import re
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any

from connectors.sandboxkit.kit import HttpError, Request, Sandbox
from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import BLOCKED_COST_CENTER, COST_CENTERS, build_world, stable_guid, stable_id

USERS = "Users"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = {"Content-Type": "application/scim+json"}
MAX_COUNT = 100
STATIC_TOKEN = "sandbox-scim-token"
DEPARTMENTS = dict([*COST_CENTERS, BLOCKED_COST_CENTER])


def scim_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def scim_error(status: int, detail: str, scim_type: str = "") -> HttpError:
    body = {"schemas": [ERROR], "detail": detail, "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    return HttpError(status, body, dict(SCIM_JSON))


# --- filters (RFC 7644 §3.4.2.2, the "and" subset) ----------------------------------------------

TERM = re.compile(r'\s*(?P<attr>[A-Za-z][\w.:$-]*)\s+(?:(?P<op>eq|ne|co|sw|ew|gt|ge|lt|le)\s+'
                  r'(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?)|(?P<pr>pr))\s*', re.I)
AND = re.compile(r"and\s+", re.I)
# lower-cased attribute path -> (kind, case exact): "string", "bool", "time"
FILTER_ATTRS = {
    "id": ("string", True), "externalid": ("string", True), "username": ("string", False),
    "displayname": ("string", False), "emails.value": ("string", False), "active": ("bool", True),
    "meta.created": ("time", True), "meta.lastmodified": ("time", True),
    **{f"{ENT.lower()}:{a}": ("string", False) for a in ("employeenumber", "costcenter", "organization",
                                                         "department")},
    f"{ENT.lower()}:manager.value": ("string", True), f"{ENT.lower()}:manager": ("string", True),
}


def parse_filter(text: str) -> list[tuple[str, str, Any]]:
    terms, pos = [], 0
    while True:
        m = TERM.match(text, pos)
        if not m:
            raise scim_error(400, f"Cannot parse the filter at {text[pos:]!r}: this server supports "
                                  "'attribute op value' terms joined by 'and'", "invalidFilter")
        attr = m["attr"].lower()
        if attr not in FILTER_ATTRS:
            raise scim_error(400, f"Filtering on {m['attr']!r} is not supported", "invalidFilter")
        op = (m["op"] or "pr").lower()
        value = json.loads(m["value"]) if m["value"] and m["value"][0] == '"' else \
            {"true": True, "false": False, "null": None}.get((m["value"] or "").lower(), m["value"])
        kind = FILTER_ATTRS[attr][0]
        if kind == "time" and op != "pr" and (op in ("co", "sw", "ew") or parse_time(value) is None):
            raise scim_error(400, f"{m['attr']} needs a date-time and eq/ne/gt/ge/lt/le", "invalidFilter")
        if kind == "bool" and op != "pr" and (op not in ("eq", "ne") or not isinstance(value, bool)):
            raise scim_error(400, f"{m['attr']} is a boolean: use eq/ne true|false", "invalidFilter")
        terms.append((attr, op, value))
        pos = m.end()
        if pos == len(text):
            return terms
        if not (a := AND.match(text, pos)):
            raise scim_error(400, f"Only 'and' may join filter terms, not {text[pos:]!r}", "invalidFilter")
        pos = a.end()


OPS = {"eq": operator.eq, "ne": operator.ne, "co": lambda a, b: b in a, "sw": str.startswith, "ew": str.endswith,
       "gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


def filter_values(user: dict, attr: str) -> list[Any]:
    if attr == "emails.value":
        return [e.get("value") for e in user.get("emails") or []]
    if attr.startswith(ENT.lower() + ":"):
        sub = attr[len(ENT) + 1:].split(".")[0]
        key = {"employeenumber": "employeeNumber", "costcenter": "costCenter"}.get(sub, sub)
        value = user.get(ENT, {}).get(key)
        return [value.get("value") if isinstance(value, dict) else value]
    node: Any = user
    for part in attr.split("."):
        node = next((v for k, v in node.items() if k.lower() == part), None) if isinstance(node, dict) else None
    return [node]


def matches(user: dict, attr: str, op: str, arg: Any) -> bool:
    kind, exact = FILTER_ATTRS[attr]
    for value in filter_values(user, attr):
        if op == "pr":
            if value not in (None, "", []):
                return True
            continue
        if value is None:
            continue
        if kind == "time":
            left, right = parse_time(value), parse_time(arg)
        elif kind == "bool":
            left, right = value, arg
        else:
            left, right = str(value), "" if arg is None else str(arg)
            if not exact:
                left, right = left.lower(), right.lower()
        if left is None:
            continue
        if OPS[op](left, right):
            return True
    return False


# --- static discovery documents (RFC 7643 §8.5-8.7, trimmed to what this sandbox does) ----------


def _attr(name: str, description: str, kind: str = "string", **extra: Any) -> dict:
    return {"name": name, "type": kind, "multiValued": False, "description": description, "required": False,
            "caseExact": False, "mutability": "readWrite", "returned": "default", "uniqueness": "none", **extra}


SCHEMAS = [
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": CORE, "name": "User",
     "description": "User Account", "attributes": [
         _attr("userName", "Unique identifier for the User. REQUIRED.", required=True, uniqueness="server"),
         _attr("name", "The components of the user's real name.", "complex", subAttributes=[
             _attr("formatted", "The full name, formatted for display."),
             _attr("familyName", "The family name of the User."),
             _attr("givenName", "The given name of the User.")]),
         _attr("displayName", "The name of the User, suitable for display to end-users."),
         _attr("active", "A Boolean value indicating the User's administrative status.", "boolean"),
         _attr("emails", "Email addresses for the user.", "complex", multiValued=True, subAttributes=[
             _attr("value", "Email addresses for the user."),
             _attr("type", "A label indicating the attribute's function, e.g., 'work' or 'home'."),
             _attr("primary", "Whether this is the preferred mailing address.", "boolean")])],
     "meta": {"resourceType": "Schema", "location": f"/v2/Schemas/{CORE}"}},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": ENT, "name": "EnterpriseUser",
     "description": "Enterprise User", "attributes": [
         _attr("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
         _attr("costCenter", "Identifies the name of a cost center."),
         _attr("organization", "Identifies the name of an organization."),
         _attr("department", "Identifies the name of a department."),
         _attr("manager", "The User's manager.", "complex", subAttributes=[
             _attr("value", "The id of the SCIM resource representing the User's manager.", required=True,
                   caseExact=True),
             _attr("$ref", "The URI of the SCIM resource representing the User's manager.", "reference",
                   referenceTypes=["User"], required=True),
             _attr("displayName", "The displayName of the User's manager.", mutability="readOnly")])],
     "meta": {"resourceType": "Schema", "location": f"/v2/Schemas/{ENT}"}},
]
RESOURCE_TYPE_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "User", "name": "User",
    "endpoint": "/Users", "description": "User Account", "schema": CORE,
    "schemaExtensions": [{"schema": ENT, "required": False}],
    "meta": {"location": "/scim/v2/ResourceTypes/User", "resourceType": "ResourceType"},
}
SERVICE_PROVIDER_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "documentationUri": "/", "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": True, "maxResults": MAX_COUNT}, "changePassword": {"supported": False},
    "sort": {"supported": True}, "etag": {"supported": False},
    "authenticationSchemes": [{
        "name": "OAuth Bearer Token", "type": "oauthbearertoken", "primary": True,
        "description": "A token from /oauth2/v2.0/token (client credentials) or the static secret token",
        "specUri": "http://www.rfc-editor.org/info/rfc6750"}],
    "meta": {"location": "/scim/v2/ServiceProviderConfig", "resourceType": "ServiceProviderConfig"},
}


def list_response(resources: list, total: int | None = None, start: int = 1) -> dict:
    return {"schemas": [LIST], "totalResults": len(resources) if total is None else total,
            "itemsPerPage": len(resources), "startIndex": start, "Resources": resources}


# --- attribute writes, shared by POST and PATCH -------------------------------------------------


def as_text(value: Any, path: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict | list) or isinstance(value, bool):
        raise scim_error(400, f"{path} must be a string, not {json.dumps(value, default=str)}", "invalidValue")
    return str(value)


def as_bool(value: Any, path: str) -> bool:
    # Entra sends "True"/"False" strings in PATCH bodies; RFC 7643 says a JSON boolean. Take both.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise scim_error(400, f"{path} must be a boolean, not {value!r}", "invalidValue")


class ScimSandbox(Sandbox):
    name = "scim"
    token_path = "/oauth2/v2.0/token"

    def __init__(self, *, data_path: str | None = None, seed: int = 42, faults: dict | None = None, **options: Any):
        self.lock = threading.RLock()
        self.static_token = str(options.pop("token", None) or STATIC_TOKEN)
        super().__init__(data_path=data_path, seed=seed, faults=faults, **options)
        newest = max((u["meta"]["lastModified"] for u in self.store.all(USERS)), default="")
        self._last = parse_time(newest) or datetime.now(UTC).replace(microsecond=0)
        # Sandbox time starts after the seeded history: new changes always sort after it.
        self._offset = max(timedelta(0), self._last + timedelta(seconds=1) - datetime.now(UTC))

    # --- setup and seed ---------------------------------------------------------------------
    def setup(self) -> None:
        v2 = r"/scim/v2"
        self.route("GET", v2 + r"/Users", self._list)
        self.route("POST", v2 + r"/Users", self._create)
        self.route("GET", v2 + r"/Users/(?P<id>[^/]+)", self._get)
        self.route("PATCH", v2 + r"/Users/(?P<id>[^/]+)", self._patch)
        self.route("GET", v2 + r"/ServiceProviderConfig", lambda r: (200, SERVICE_PROVIDER_CONFIG, dict(SCIM_JSON)))
        self.route("GET", v2 + r"/ResourceTypes", lambda r: (200, list_response([RESOURCE_TYPE_USER]), dict(SCIM_JSON)))
        self.route("GET", v2 + r"/ResourceTypes/User", lambda r: (200, RESOURCE_TYPE_USER, dict(SCIM_JSON)))
        self.route("GET", v2 + r"/Schemas", lambda r: (200, list_response(SCHEMAS), dict(SCIM_JSON)))
        self.route("GET", v2 + r"/Schemas/(?P<urn>[^/]+)", self._schema)
        self.route("GET", r"/", self._console, auth=False)
        self.route("POST", r"/sandbox/deactivate", self._deactivate, auth=False)
        self.route("POST", r"/sandbox/touch", self._touch, auth=False)

    @property
    def today(self) -> date:
        value = self.options.get("today")
        return value if isinstance(value, date) else date.fromisoformat(value) if value else date.today()

    def seed_store(self) -> None:
        world = build_world(seed=self.seed, today=self.today, n_employees=int(self.options.get("n_employees") or 200),
                            n_lines=int(self.options.get("n_lines") or 2000))
        managers = build_p2p(world, seed=self.seed).managers
        ids = {e.code: stable_guid("scim-user", self.seed, e.code) for e in world.employees}
        start = datetime.combine(self.today - timedelta(days=90), datetime.min.time(), UTC) + timedelta(hours=8)
        users = {}
        for i, e in enumerate(world.employees):
            # Provisioned in batches of four per minute, so several users share a lastModified.
            created = start + timedelta(minutes=i // 4)
            modified = created if e.status == "Active" else start + timedelta(days=60, minutes=i)
            ext = {"employeeNumber": e.code, "costCenter": e.cost_center, "organization": e.entity,
                   "department": DEPARTMENTS.get(e.cost_center, e.cost_center)}
            if managers.get(e.code) in ids:
                ext["manager"] = {"value": ids[managers[e.code]]}
            user = {"schemas": [CORE, ENT], "id": ids[e.code], "externalId": e.code, "userName": e.email,
                    "name": {"givenName": e.first, "familyName": e.last, "formatted": e.name},
                    "displayName": e.name, "emails": [{"value": e.email, "type": "work", "primary": True}],
                    "active": e.status == "Active", ENT: ext,
                    "meta": {"resourceType": "User", "created": scim_time(created),
                             "lastModified": scim_time(modified)}}
            users[user["id"]] = self._versioned(user)
        self.store.put_many(USERS, users)

    # --- auth, errors, clock ----------------------------------------------------------------
    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"schemas": [ERROR], "detail": message, "status": str(status)}

    def check_auth(self, req: Request) -> None:
        if req.headers.get("Authorization", "") == f"Bearer {self.static_token}":
            return
        super().check_auth(req)

    def _now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self._offset

    def _stamp(self) -> str:
        """Whole seconds, never backwards; changes within one second share a stamp."""
        with self.lock:
            self._last = max(self._now(), self._last)
            return scim_time(self._last)

    @staticmethod
    def _versioned(user: dict) -> dict:
        # Chained on the previous version: every write (a touch too) gets a new one, a no-op PATCH none.
        content = {k: v for k, v in user.items() if k != "meta"}
        content["meta"] = {k: user["meta"].get(k) for k in ("lastModified", "version")}
        digest = stable_id(json.dumps(content, sort_keys=True, default=str), length=16).lower()
        user["meta"]["version"] = f'W/"{digest}"'
        return user

    # --- reading ----------------------------------------------------------------------------
    def _render(self, user: dict, req: Request) -> dict:
        base = f"http://{req.headers.get('Host', '127.0.0.1')}/scim/v2"
        out = copy.deepcopy(user)
        out["meta"]["location"] = f"{base}/Users/{user['id']}"
        manager = out.get(ENT, {}).get("manager")
        if manager:
            boss = self.store.get(USERS, manager["value"]) or {}
            manager.update({"$ref": f"{base}/Users/{manager['value']}", "displayName": boss.get("displayName", "")})
        return out

    def _int(self, req: Request, name: str, default: int) -> int:
        raw = req.query.get(name, "")
        try:
            return int(raw) if raw != "" else default
        except ValueError:
            raise scim_error(400, f"{name} must be an integer, not {raw!r}", "invalidValue") from None

    def _list(self, req: Request):
        terms = parse_filter(req.query["filter"]) if req.query.get("filter", "").strip() else []
        # RFC 7644 §3.4.2.4: startIndex below 1 means 1, a negative count means 0.
        start, count = max(1, self._int(req, "startIndex", 1)), min(MAX_COUNT, max(0, self._int(req, "count", MAX_COUNT)))
        sort_by = req.query.get("sortBy", "")
        sort_field = {"meta.lastmodified": "lastModified", "meta.created": "created", "username": "userName",
                      "id": "id", "": ""}.get(sort_by.lower())
        if sort_field is None:
            raise scim_error(400, f"sortBy {sort_by!r} is not supported", "invalidValue")
        with self.lock:
            rows = [u for u in self.store.all(USERS) if all(matches(u, *t) for t in terms)]
        rows.sort(key=lambda u: u["id"])  # a stable base order, so paging is repeatable
        if sort_field:
            rows.sort(key=lambda u: str(u["meta"].get(sort_field) or u.get(sort_field) or "").lower(),
                      reverse=req.query.get("sortOrder", "").lower() == "descending")
        page = [self._render(u, req) for u in rows[start - 1:start - 1 + count]]
        return 200, list_response(page, len(rows), start), dict(SCIM_JSON)

    def _user(self, user_id: str) -> dict:
        user = self.store.get(USERS, user_id)
        if user is None:
            raise scim_error(404, f"Resource {user_id} not found")
        return user

    def _get(self, req: Request):
        user = self._render(self._user(req.match["id"]), req)
        return 200, user, {**SCIM_JSON, "ETag": user["meta"]["version"]}

    def _schema(self, req: Request):
        found = next((s for s in SCHEMAS if s["id"] == req.match["urn"]), None)
        if not found:
            raise scim_error(404, f"Resource {req.match['urn']} not found")
        return 200, found, dict(SCIM_JSON)

    # --- writing ----------------------------------------------------------------------------
    def _body(self, req: Request) -> dict:
        try:
            body = json.loads(req.body or b"null", parse_float=Decimal)
        except ValueError:
            raise scim_error(400, "Request is unparsable, syntactically incorrect, or violates schema.",
                             "invalidSyntax") from None
        if not isinstance(body, dict):
            raise scim_error(400, "The request body must be a JSON object.", "invalidSyntax")
        return body

    def _set(self, user: dict, path: str, value: Any, strict: bool = True) -> None:
        """Set (or, with None, clear) one attribute; ``path`` as Entra and RFC 7644 §3.5.2 write it.

        ``strict=False`` (POST bodies, path-less PATCH values) ignores attributes the sandbox does not
        keep (title, addresses...), as Entra sends them; an explicit unknown PATCH path is an error.
        """
        p, ent = path.strip().lower(), user.setdefault(ENT, {})
        if p in ("urn:ietf:params:scim:schemas:core:2.0:user", ENT.lower()) or p == "name" and isinstance(value, dict):
            # A whole object: the core schema URN, the enterprise URN, or "name".
            if not isinstance(value, dict):
                raise scim_error(400, f"{path} needs an object", "invalidValue")
            for key, sub in value.items():
                self._set(user, f"name.{key}" if p == "name" else f"{path}:{key}" if p == ENT.lower() else key, sub,
                          strict)
            return
        if p.startswith("urn:ietf:params:scim:schemas:core:2.0:user:"):
            p = p.rsplit(":", 1)[1]
        if p == "active":
            if value is None:
                raise scim_error(400, "active cannot be removed", "mutability")
            user["active"] = as_bool(value, path)
        elif p == "username":
            name = as_text(value, path)
            if not name:
                raise scim_error(400, "userName is required", "invalidValue")
            if any(u["userName"].lower() == name.lower() and u["id"] != user.get("id") for u in self.store.all(USERS)):
                raise scim_error(409, f"userName {name} is already taken", "uniqueness")
            user["userName"] = name
        elif p in ("displayname", "externalid"):
            key = {"displayname": "displayName", "externalid": "externalId"}[p]
            self._put(user, key, as_text(value, path))
        elif p in ("name.givenname", "name.familyname", "name.formatted"):
            key = {"givenname": "givenName", "familyname": "familyName", "formatted": "formatted"}[p[5:]]
            self._put(user.setdefault("name", {}), key, as_text(value, path))
        elif p == 'emails[type eq "work"].value':
            address, others = as_text(value, path), [e for e in user.get("emails", []) if e.get("type") != "work"]
            user["emails"] = ([{"value": address, "type": "work", "primary": True}] if address else []) + others
        elif p == "emails":
            if not isinstance(value or [], list) or not all(isinstance(e, dict) and e.get("value") for e in value or []):
                raise scim_error(400, f"{path} must be a list of {{value, type, primary}}", "invalidValue")
            user["emails"] = [{k: e[k] for k in ("value", "type", "primary") if k in e} for e in value or []]
        elif p.startswith(ENT.lower() + ":"):
            sub = p[len(ENT) + 1:]
            key = {"employeenumber": "employeeNumber", "costcenter": "costCenter", "organization": "organization",
                   "department": "department", "manager": "manager", "manager.value": "manager"}.get(sub)
            if key is None and not strict:
                return
            if key is None:
                raise scim_error(400, f"{path} is not an attribute of the enterprise extension", "invalidPath")
            if key == "manager":
                # Entra sends the manager's id as a bare string; RFC 7643 as {"value": id}.
                ref = as_text(value.get("value") if isinstance(value, dict) else value, path)
                if ref and (ref == user.get("id") or not self.store.get(USERS, ref)):
                    raise scim_error(400, f"manager {ref} is not another User of this directory", "invalidValue")
                self._put(ent, "manager", {"value": ref} if ref else None)
            else:
                self._put(ent, key, as_text(value, path))
        elif strict and p not in ("schemas", "id", "meta"):  # read-only or structural: ignored, as servers do
            raise scim_error(400, f"{path} is not a supported attribute path", "invalidPath")

    @staticmethod
    def _put(node: dict, key: str, value: Any) -> None:
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value

    def _save(self, before: dict | None, user: dict, at: str = "") -> tuple[dict, bool]:
        """Store the user if it changed; only a change moves lastModified and the version."""
        if not user.get(ENT):
            user.pop(ENT, None)
        user["schemas"] = [CORE, ENT] if ENT in user else [CORE]
        if before is not None and {k: v for k, v in before.items() if k != "meta"} == \
                {k: v for k, v in user.items() if k != "meta"}:
            return before, False
        user["meta"]["lastModified"] = at or self._stamp()
        self.store.put(USERS, user["id"], self._versioned(user))
        return user, True

    def _create(self, req: Request):
        body = self._body(req)
        if not body.get("userName"):
            raise scim_error(400, "userName is required", "invalidValue")
        with self.lock:
            n = len(self.store.all(USERS))  # in the id: a userName renamed and then reused gets a new id
            user = {"id": stable_guid("scim-user", self.seed, "api", str(body["userName"]).lower(), n), "active": True}
            for key, value in body.items():
                self._set(user, key, value, strict=False)
            stamp = self._stamp()
            user["meta"] = {"resourceType": "User", "created": stamp}
            user, _ = self._save(None, user, stamp)
            self.count("users.created")
        out = self._render(user, req)
        return 201, out, {**SCIM_JSON, "Location": out["meta"]["location"], "ETag": out["meta"]["version"]}

    def _patch(self, req: Request):
        body = self._body(req)
        ops = body.get("Operations")
        if PATCH_OP not in (body.get("schemas") or []) or not isinstance(ops, list) or not ops:
            raise scim_error(400, f"A PATCH body is {{\"schemas\": [\"{PATCH_OP}\"], \"Operations\": [...]}}",
                             "invalidSyntax")
        with self.lock:
            before = self._user(req.match["id"])
            user = copy.deepcopy(before)
            for op in ops:
                kind = str(op.get("op", "")).lower() if isinstance(op, dict) else ""  # Entra: "Replace", "Add"
                if kind not in ("add", "replace", "remove"):
                    raise scim_error(400, f"op must be add, replace or remove, not {op!r}", "invalidSyntax")
                path = op.get("path")
                if kind == "remove":
                    if not path:
                        raise scim_error(400, "remove needs a path", "noTarget")
                    self._set(user, str(path), None)
                elif path:
                    self._set(user, str(path), op.get("value"))
                elif isinstance(op.get("value"), dict):
                    for key, value in op["value"].items():  # no path: the value names the attributes
                        self._set(user, key, value, strict=False)
                else:
                    raise scim_error(400, "add/replace without a path needs an object value", "invalidValue")
            user, changed = self._save(before, user)
            if changed:
                self.count("users.patched")
        out = self._render(user, req)
        return 200, out, {**SCIM_JSON, "ETag": out["meta"]["version"]}

    # --- sandbox control ----------------------------------------------------------------------
    def _control_body(self, req: Request) -> dict:
        if "form" in req.headers.get("Content-Type", ""):
            return req.form()
        return self._body(req) if req.body else {}

    def _by_number(self, number: str) -> dict:
        found = [u for u in self.store.all(USERS) if u.get(ENT, {}).get("employeeNumber") == number]
        if not found:
            raise scim_error(404, f"No user has employeeNumber {number}")
        return found[0]

    def _deactivate(self, req: Request):
        form = "form" in req.headers.get("Content-Type", "")
        number = str(self._control_body(req).get("employee_number") or "")
        with self.lock:
            before = self._by_number(number)
            user, changed = self._save(before, {**copy.deepcopy(before), "active": False})
            if changed:
                self.count("users.offboarded")
        return (303, "", {"Location": "/"}) if form else {"changed": changed, **self._render(user, req)}

    def _touch(self, req: Request):
        number = str(self._control_body(req).get("employee_number") or "")
        with self.lock:
            targets = [self._by_number(number)] if number else self.store.all(USERS)
            for user in targets:
                user = copy.deepcopy(user)
                user["meta"]["lastModified"] = self._stamp()
                self.store.put(USERS, user["id"], self._versioned(user))
        return {"touched": len(targets), "lastModified": scim_time(self._last)}

    # --- console ----------------------------------------------------------------------------
    def _console(self, req: Request):
        e = escape
        with self.lock:
            users = sorted(self.store.all(USERS), key=lambda u: (u["meta"]["lastModified"], u["id"]), reverse=True)
        rows = []
        for u in users:
            ext, boss = u.get(ENT, {}), (u.get(ENT, {}).get("manager") or {}).get("value", "")
            manager = (self.store.get(USERS, boss) or {}).get("displayName", "") if boss else ""
            action = ""
            if u.get("active") and ext.get("employeeNumber"):
                action = ('<form method=post action="/sandbox/deactivate"><input type=hidden name=employee_number '
                          f'value="{e(ext["employeeNumber"])}"><button>Offboard</button></form>')
            rows.append(
                f"<tr><td>{e(u.get('displayName', ''))}<br><small>{e(u['userName'])}</small></td>"
                f"<td>{e(ext.get('employeeNumber', ''))}</td><td>{e(ext.get('organization', ''))}</td>"
                f"<td>{e(ext.get('costCenter', ''))}</td><td>{e(manager)}</td>"
                f"<td>{'active' if u.get('active') else '<b>inactive</b>'}</td>"
                f"<td>{e(u['meta']['lastModified'])}</td><td>{action}</td></tr>")
        return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>SCIM sandbox</title>"
                "<style>body{font:14px system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
                "td,th{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}"
                "small{color:#5b6b7b}form{margin:0}</style></head><body>"
                "<h1>SCIM sandbox &mdash; directory users</h1>"
                f"<p><small>{len(users)} users, {sum(1 for u in users if u.get('active'))} active.</small></p>"
                "<table><thead><tr><th>User</th><th>Employee no.</th><th>Organization</th><th>Cost center</th>"
                "<th>Manager</th><th>Status</th><th>Last modified</th><th></th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table></body></html>")

    def stats_payload(self) -> dict:
        with self.lock:
            users = self.store.all(USERS)
        return {**self.stats, "users": len(users), "active": sum(1 for u in users if u.get("active"))}


if __name__ == "__main__":  # python -m connectors.scim.sandbox.server [port]
    import sys

    from connectors.sandboxkit.kit import serve

    serve(ScimSandbox(seed=42), port=int(sys.argv[1]) if len(sys.argv) > 1 else 8105)
