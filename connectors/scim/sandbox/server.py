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

Sign-in (OpenID Connect in Entra ID's v2.0 shape, ``provider.py``): discovery at
``/{tenant}/v2.0/.well-known/openid-configuration``, the authorization code flow with PKCE (S256), RS256
ID tokens with the user's app ``roles`` and ``entities``; every active user signs in with the password
``sandbox``, a deactivated one cannot.

Sandbox routes (no auth): ``GET /`` (HTML console), ``POST /sandbox/deactivate
{"employee_number"}`` (what HR offboarding does: ``active`` becomes false), ``POST /sandbox/touch
{"employee_number"}`` (a rewrite without change: only ``meta.lastModified``/``version`` move; no
body touches everyone), ``GET|POST /sandbox/app-roles`` (who has which app role), plus the kit's ``/sandbox/health``, ``/sandbox/faults``, ``/sandbox/stats``.

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

Modules: this one routes, authenticates, keeps the clock and the store, and renders Users
(``meta.location``, manager ``$ref``); ``protocol.py`` holds the SCIM pieces (URNs, errors, the
filter grammar, ``ListResponse``, the discovery documents); ``seed.py`` the provisioned Users;
``rules.py`` what a POST or PATCH may write and how versions move; ``console.py`` the HTML console;
``provider.py`` the OpenID Connect provider, with ``oidc.py`` (its protocol pieces), ``approles.py``
(app role assignments) and ``signin.py`` (the sign-in pages).
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.sandboxkit.kit import Request, Sandbox
from connectors.sandboxkit.world import stable_guid

from . import approles, console, rules
from .oidc import CLIENT_ID, CLIENT_SECRET, SIGN_IN_PASSWORD, TENANT_ID
from .protocol import (
    ENT,
    ERROR,
    MAX_COUNT,
    RESOURCE_TYPE_USER,
    SCHEMAS,
    SCIM_JSON,
    SERVICE_PROVIDER_CONFIG,
    list_response,
    matches,
    parse_filter,
    parse_time,
    scim_error,
    scim_time,
)
from .provider import USERS, OidcProvider
from .seed import seed_users

STATIC_TOKEN = "sandbox-scim-token"


class ScimSandbox(OidcProvider, Sandbox):
    name = "scim"
    token_path = "/oauth2/v2.0/token"
    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET

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
        self.oidc_setup()

    @property
    def today(self) -> date:
        value = self.options.get("today")
        return value if isinstance(value, date) else date.fromisoformat(value) if value else date.today()

    def seed_store(self) -> None:
        self.store.put_many(
            USERS,
            seed_users(
                seed=self.seed,
                today=self.today,
                n_employees=int(self.options.get("n_employees") or 200),
                n_lines=int(self.options.get("n_lines") or 2000),
            ),
        )

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
        start, count = (
            max(1, self._int(req, "startIndex", 1)),
            min(MAX_COUNT, max(0, self._int(req, "count", MAX_COUNT))),
        )
        sort_by = req.query.get("sortBy", "")
        sort_field = {
            "meta.lastmodified": "lastModified",
            "meta.created": "created",
            "username": "userName",
            "id": "id",
            "": "",
        }.get(sort_by.lower())
        if sort_field is None:
            raise scim_error(400, f"sortBy {sort_by!r} is not supported", "invalidValue")
        with self.lock:
            rows = [u for u in self.store.all(USERS) if all(matches(u, *t) for t in terms)]
        rows.sort(key=lambda u: u["id"])  # a stable base order, so paging is repeatable
        if sort_field:
            rows.sort(
                key=lambda u: str(u["meta"].get(sort_field) or u.get(sort_field) or "").lower(),
                reverse=req.query.get("sortOrder", "").lower() == "descending",
            )
        page = [self._render(u, req) for u in rows[start - 1 : start - 1 + count]]
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
            raise scim_error(
                400, "Request is unparsable, syntactically incorrect, or violates schema.", "invalidSyntax"
            ) from None
        if not isinstance(body, dict):
            raise scim_error(400, "The request body must be a JSON object.", "invalidSyntax")
        return body

    def _writer(self) -> rules.Writer:
        return rules.Writer(lambda: self.store.all(USERS), lambda user_id: self.store.get(USERS, user_id))

    def _save(self, before: dict | None, user: dict, at: str = "") -> tuple[dict, bool]:
        """Store the user if it changed; only a change moves lastModified and the version."""
        if not rules.changed(before, user):
            return before, False
        user["meta"]["lastModified"] = at or self._stamp()
        self.store.put(USERS, user["id"], rules.versioned(user))
        return user, True

    def _create(self, req: Request):
        body = self._body(req)
        if not body.get("userName"):
            raise scim_error(400, "userName is required", "invalidValue")
        with self.lock:
            n = len(self.store.all(USERS))  # in the id: a userName renamed and then reused gets a new id
            user = {"id": stable_guid("scim-user", self.seed, "api", str(body["userName"]).lower(), n), "active": True}
            writer = self._writer()
            for key, value in body.items():
                writer.set(user, key, value, strict=False)
            stamp = self._stamp()
            user["meta"] = {"resourceType": "User", "created": stamp}
            user, _ = self._save(None, user, stamp)
            self.count("users.created")
        out = self._render(user, req)
        return 201, out, {**SCIM_JSON, "Location": out["meta"]["location"], "ETag": out["meta"]["version"]}

    def _patch(self, req: Request):
        body = self._body(req)
        ops = rules.patch_operations(body)
        with self.lock:
            before = self._user(req.match["id"])
            user = copy.deepcopy(before)
            self._writer().patch(user, ops)
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
                self.store.put(USERS, user["id"], rules.versioned(user))
        return {"touched": len(targets), "lastModified": scim_time(self._last)}

    # --- console ----------------------------------------------------------------------------
    def _console(self, req: Request):
        with self.lock:
            users = sorted(self.store.all(USERS), key=lambda u: (u["meta"]["lastModified"], u["id"]), reverse=True)
            bosses = self.bosses()
            roles = {u["id"]: self.assignment_of(u, bosses) for u in users}
        base = self._base(req)
        return console.render(
            users,
            lambda user_id: self.store.get(USERS, user_id),
            roles_of=lambda u: roles.get(u["id"], {}),
            sign_in={
                "discovery": f"{base}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "password": SIGN_IN_PASSWORD,
                "rules": approles.rules_text(),
            },
        )

    def stats_payload(self) -> dict:
        with self.lock:
            users = self.store.all(USERS)
        return {**self.stats, "users": len(users), "active": sum(1 for u in users if u.get("active"))}
