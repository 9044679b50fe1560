"""What a write may do to a User: attribute paths and values (POST bodies and PATCH operations, in
RFC 7644 §3.5.2's and Entra's spellings), uniqueness, manager references, and versioning.

Entra's quirks are accepted: capitalized ops (``"Replace"``), booleans as strings (``"False"``), a
manager as a bare id, path-less PATCH values naming the attributes. ``strict=False`` (POST bodies,
path-less values) ignores attributes the sandbox does not keep (title, addresses...); an explicit
unknown PATCH path is a 400 ``invalidPath``. A write that changes nothing is no write: only a
change moves ``meta.lastModified`` and ``meta.version`` (``changed``, ``versioned``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connectors.sandboxkit.world import stable_id

from .protocol import CORE, ENT, PATCH_OP, scim_error


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


def put(node: dict, key: str, value: Any) -> None:
    if value is None:
        node.pop(key, None)
    else:
        node[key] = value


def versioned(user: dict) -> dict:
    # Chained on the previous version: every write (a touch too) gets a new one, a no-op PATCH none.
    content = {k: v for k, v in user.items() if k != "meta"}
    content["meta"] = {k: user["meta"].get(k) for k in ("lastModified", "version")}
    digest = stable_id(json.dumps(content, sort_keys=True, default=str), length=16).lower()
    user["meta"]["version"] = f'W/"{digest}"'
    return user


def changed(before: dict | None, user: dict) -> bool:
    """Tidy ``user`` (an empty extension goes, ``schemas`` follows) and say whether it differs from
    ``before`` in anything but ``meta``."""
    if not user.get(ENT):
        user.pop(ENT, None)
    user["schemas"] = [CORE, ENT] if ENT in user else [CORE]
    return before is None or {k: v for k, v in before.items() if k != "meta"} != {
        k: v for k, v in user.items() if k != "meta"
    }


def patch_operations(body: dict) -> list:
    ops = body.get("Operations")
    if PATCH_OP not in (body.get("schemas") or []) or not isinstance(ops, list) or not ops:
        raise scim_error(400, f'A PATCH body is {{"schemas": ["{PATCH_OP}"], "Operations": [...]}}', "invalidSyntax")
    return ops


class Writer:
    """Applies attribute writes to a User dict. ``users()`` lists the directory's Users and
    ``get(id)`` finds one: userName is unique, a manager must be another User."""

    def __init__(self, users: Callable[[], list[dict]], get: Callable[[str], dict | None]):
        self.users = users
        self.get = get

    def set(self, user: dict, path: str, value: Any, strict: bool = True) -> None:
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
                self.set(
                    user, f"name.{key}" if p == "name" else f"{path}:{key}" if p == ENT.lower() else key, sub, strict
                )
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
            if any(u["userName"].lower() == name.lower() and u["id"] != user.get("id") for u in self.users()):
                raise scim_error(409, f"userName {name} is already taken", "uniqueness")
            user["userName"] = name
        elif p in ("displayname", "externalid"):
            key = {"displayname": "displayName", "externalid": "externalId"}[p]
            put(user, key, as_text(value, path))
        elif p in ("name.givenname", "name.familyname", "name.formatted"):
            key = {"givenname": "givenName", "familyname": "familyName", "formatted": "formatted"}[p[5:]]
            put(user.setdefault("name", {}), key, as_text(value, path))
        elif p == 'emails[type eq "work"].value':
            address, others = as_text(value, path), [e for e in user.get("emails", []) if e.get("type") != "work"]
            user["emails"] = ([{"value": address, "type": "work", "primary": True}] if address else []) + others
        elif p == "emails":
            if not isinstance(value or [], list) or not all(
                isinstance(e, dict) and e.get("value") for e in value or []
            ):
                raise scim_error(400, f"{path} must be a list of {{value, type, primary}}", "invalidValue")
            user["emails"] = [{k: e[k] for k in ("value", "type", "primary") if k in e} for e in value or []]
        elif p.startswith(ENT.lower() + ":"):
            sub = p[len(ENT) + 1 :]
            key = {
                "employeenumber": "employeeNumber",
                "costcenter": "costCenter",
                "organization": "organization",
                "department": "department",
                "manager": "manager",
                "manager.value": "manager",
            }.get(sub)
            if key is None and not strict:
                return
            if key is None:
                raise scim_error(400, f"{path} is not an attribute of the enterprise extension", "invalidPath")
            if key == "manager":
                # Entra sends the manager's id as a bare string; RFC 7643 as {"value": id}.
                ref = as_text(value.get("value") if isinstance(value, dict) else value, path)
                if ref and (ref == user.get("id") or not self.get(ref)):
                    raise scim_error(400, f"manager {ref} is not another User of this directory", "invalidValue")
                put(ent, "manager", {"value": ref} if ref else None)
            else:
                put(ent, key, as_text(value, path))
        elif strict and p not in ("schemas", "id", "meta"):  # read-only or structural: ignored, as servers do
            raise scim_error(400, f"{path} is not a supported attribute path", "invalidPath")

    def patch(self, user: dict, ops: list) -> None:
        for op in ops:
            kind = str(op.get("op", "")).lower() if isinstance(op, dict) else ""  # Entra: "Replace", "Add"
            if kind not in ("add", "replace", "remove"):
                raise scim_error(400, f"op must be add, replace or remove, not {op!r}", "invalidSyntax")
            path = op.get("path")
            if kind == "remove":
                if not path:
                    raise scim_error(400, "remove needs a path", "noTarget")
                self.set(user, str(path), None)
            elif path:
                self.set(user, str(path), op.get("value"))
            elif isinstance(op.get("value"), dict):
                for key, value in op["value"].items():  # no path: the value names the attributes
                    self.set(user, key, value, strict=False)
            else:
                raise scim_error(400, "add/replace without a path needs an object value", "invalidValue")
