"""The pieces of SCIM 2.0 (RFC 7643/7644) the sandbox speaks: URNs, date-times, the error body, the
filter grammar (the ``and`` subset of §3.4.2.2), ``ListResponse`` and the static discovery
documents (ServiceProviderConfig, ResourceTypes, Schemas; §8.5-8.7, trimmed to what the sandbox
does). No state: the server applies them to its store.
"""

from __future__ import annotations

import json
import operator
import re
from datetime import UTC, datetime
from typing import Any

from connectors.sandboxkit.kit import HttpError

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = {"Content-Type": "application/scim+json"}
MAX_COUNT = 100


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

TERM = re.compile(
    r"\s*(?P<attr>[A-Za-z][\w.:$-]*)\s+(?:(?P<op>eq|ne|co|sw|ew|gt|ge|lt|le)\s+"
    r'(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?)|(?P<pr>pr))\s*',
    re.I,
)
AND = re.compile(r"and\s+", re.I)
# lower-cased attribute path -> (kind, case exact): "string", "bool", "time"
FILTER_ATTRS = {
    "id": ("string", True),
    "externalid": ("string", True),
    "username": ("string", False),
    "displayname": ("string", False),
    "emails.value": ("string", False),
    "active": ("bool", True),
    "meta.created": ("time", True),
    "meta.lastmodified": ("time", True),
    **{f"{ENT.lower()}:{a}": ("string", False) for a in ("employeenumber", "costcenter", "organization", "department")},
    f"{ENT.lower()}:manager.value": ("string", True),
    f"{ENT.lower()}:manager": ("string", True),
}


def parse_filter(text: str) -> list[tuple[str, str, Any]]:
    terms, pos = [], 0
    while True:
        m = TERM.match(text, pos)
        if not m:
            raise scim_error(
                400,
                f"Cannot parse the filter at {text[pos:]!r}: this server supports "
                "'attribute op value' terms joined by 'and'",
                "invalidFilter",
            )
        attr = m["attr"].lower()
        if attr not in FILTER_ATTRS:
            raise scim_error(400, f"Filtering on {m['attr']!r} is not supported", "invalidFilter")
        op = (m["op"] or "pr").lower()
        value = (
            json.loads(m["value"])
            if m["value"] and m["value"][0] == '"'
            else {"true": True, "false": False, "null": None}.get((m["value"] or "").lower(), m["value"])
        )
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


OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "co": lambda a, b: b in a,
    "sw": str.startswith,
    "ew": str.endswith,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def filter_values(user: dict, attr: str) -> list[Any]:
    if attr == "emails.value":
        return [e.get("value") for e in user.get("emails") or []]
    if attr.startswith(ENT.lower() + ":"):
        sub = attr[len(ENT) + 1 :].split(".")[0]
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
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "description": description,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


SCHEMAS = [
    {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": CORE,
        "name": "User",
        "description": "User Account",
        "attributes": [
            _attr("userName", "Unique identifier for the User. REQUIRED.", required=True, uniqueness="server"),
            _attr(
                "name",
                "The components of the user's real name.",
                "complex",
                subAttributes=[
                    _attr("formatted", "The full name, formatted for display."),
                    _attr("familyName", "The family name of the User."),
                    _attr("givenName", "The given name of the User."),
                ],
            ),
            _attr("displayName", "The name of the User, suitable for display to end-users."),
            _attr("active", "A Boolean value indicating the User's administrative status.", "boolean"),
            _attr(
                "emails",
                "Email addresses for the user.",
                "complex",
                multiValued=True,
                subAttributes=[
                    _attr("value", "Email addresses for the user."),
                    _attr("type", "A label indicating the attribute's function, e.g., 'work' or 'home'."),
                    _attr("primary", "Whether this is the preferred mailing address.", "boolean"),
                ],
            ),
        ],
        "meta": {"resourceType": "Schema", "location": f"/v2/Schemas/{CORE}"},
    },
    {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": ENT,
        "name": "EnterpriseUser",
        "description": "Enterprise User",
        "attributes": [
            _attr("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
            _attr("costCenter", "Identifies the name of a cost center."),
            _attr("organization", "Identifies the name of an organization."),
            _attr("department", "Identifies the name of a department."),
            _attr(
                "manager",
                "The User's manager.",
                "complex",
                subAttributes=[
                    _attr(
                        "value",
                        "The id of the SCIM resource representing the User's manager.",
                        required=True,
                        caseExact=True,
                    ),
                    _attr(
                        "$ref",
                        "The URI of the SCIM resource representing the User's manager.",
                        "reference",
                        referenceTypes=["User"],
                        required=True,
                    ),
                    _attr("displayName", "The displayName of the User's manager.", mutability="readOnly"),
                ],
            ),
        ],
        "meta": {"resourceType": "Schema", "location": f"/v2/Schemas/{ENT}"},
    },
]
RESOURCE_TYPE_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
    "id": "User",
    "name": "User",
    "endpoint": "/Users",
    "description": "User Account",
    "schema": CORE,
    "schemaExtensions": [{"schema": ENT, "required": False}],
    "meta": {"location": "/scim/v2/ResourceTypes/User", "resourceType": "ResourceType"},
}
SERVICE_PROVIDER_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "documentationUri": "/",
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": True, "maxResults": MAX_COUNT},
    "changePassword": {"supported": False},
    "sort": {"supported": True},
    "etag": {"supported": False},
    "authenticationSchemes": [
        {
            "name": "OAuth Bearer Token",
            "type": "oauthbearertoken",
            "primary": True,
            "description": "A token from /oauth2/v2.0/token (client credentials) or the static secret token",
            "specUri": "http://www.rfc-editor.org/info/rfc6750",
        }
    ],
    "meta": {"location": "/scim/v2/ServiceProviderConfig", "resourceType": "ServiceProviderConfig"},
}


def list_response(resources: list, total: int | None = None, start: int = 1) -> dict:
    return {
        "schemas": [LIST],
        "totalResults": len(resources) if total is None else total,
        "itemsPerPage": len(resources),
        "startIndex": start,
        "Resources": resources,
    }
