"""Field ownership: which system is the source of record for each master-data field.

The defaults below say what the product expects (the ERP owns accounting structures and the vendor
master; the identity provider owns who a person is and whether they still work here). An admin can
move a field to another system on the Master data screen; every change is a new `FieldOwnership`
row, so the history says who moved what and why.

Ownership is enforced once the owning system is connected (an enabled connection with that role).
Until then any system may fill the field: a workbench without an identity provider still learns
employees from the ERP.

A change to an existing record from a system that does not own a field is not applied (filling a
blank is: the owner has not said anything yet, and its next change wins). It becomes an
`OWNERSHIP_CONFLICT` item (one per object, field and sending system) that shows both values. The item
resolves itself when the two systems agree again; a person can keep the owner's value (override
with a reason) or make the sender the owner of that field, which applies every waiting value from
that sender in one go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction

from workbench.errors import WorkbenchError
from workbench.models import Connection, Employee, ExceptionItem, FieldOwnership, MasterDataLink
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.selectors.suppliers import ErpVendors, system_label
from workbench.services.exception_items import exception_item_raise, exception_items_resolve
from workbench.services.snooze import master_data_wake
from workbench.streams import STREAMS, field_value
from workbench.supplier_match import normalize_tax_id

ERP = Connection.Role.ERP.value
IDENTITY = Connection.Role.IDENTITY.value
CODE = "OWNERSHIP_CONFLICT"

# object type -> (label, stream in workbench.streams.STREAMS, {field: default owner})
OBJECTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "cost_center": ("Cost center", "cost_centers", {"name": ERP}),
    "gl_account": (
        "GL account",
        "gl_accounts",
        {"name": ERP, "category": ERP, "blocked": ERP, "account_type": ERP, "direct_posting": ERP},
    ),
    "tax_code": ("Tax code", "tax_codes", {"name": ERP, "tax_type": ERP}),
    "accounting_period": (
        "Accounting period",
        "accounting_periods",
        {"name": ERP, "start": ERP, "end": ERP, "closed": ERP},
    ),
    "project": ("Project", "projects", {"name": ERP}),
    "payment_term": (
        "Payment term",
        "payment_terms",
        {"name": ERP, "due_date_calculation": ERP, "discount_date_calculation": ERP, "discount_percent": ERP},
    ),
    "currency": ("Currency", "currencies", {"name": ERP, "symbol": ERP, "decimals": ERP}),
    "supplier": (
        "Supplier",
        "suppliers",
        {
            "name": ERP,
            "tax_id": ERP,
            "currency": ERP,
            "blocked": ERP,
            "changed_by_email": ERP,
            "payment_terms_code": ERP,
        },
    ),
    "employee": (
        "Employee",
        "employees",
        {"name": IDENTITY, "email": IDENTITY, "status": IDENTITY, "cost_center": IDENTITY, "manager_code": IDENTITY},
    ),
}
OBJECT_OF_STREAM = {stream: obj for obj, (_, stream, _f) in OBJECTS.items()}
FIELD_LABELS = {
    "manager_code": "manager",
    "cost_center": "home cost center",
    "tax_id": "tax id",
    "changed_by_email": "last changed by",
    "tax_type": "tax type",
    "blocked": "blocked",
    "due_date_calculation": "due date formula",
    "discount_date_calculation": "discount date formula",
    "payment_terms_code": "payment terms",
    "discount_percent": "discount %",
}


class OwnershipError(WorkbenchError):
    pass


def role_label(role: str) -> str:
    return {r.value: str(r.label) for r in Connection.Role}.get(role, role)


def field_label(field: str) -> str:
    return FIELD_LABELS.get(field, field.replace("_", " "))


def owners() -> dict[tuple[str, str], str]:
    """(object type, field) -> owning role: the defaults, overlaid by the newest admin change."""
    result = {(obj, f): role for obj, (_, _s, fields) in OBJECTS.items() for f, role in fields.items()}
    seen: set[tuple[str, str]] = set()
    for obj, field, owner in FieldOwnership.objects.order_by("-id").values_list("object_type", "field", "owner"):
        if (obj, field) in result and (obj, field) not in seen:
            seen.add((obj, field))
            result[(obj, field)] = owner
    return result


def connected_roles() -> set[str]:
    return set(Connection.objects.filter(enabled=True).values_list("role", flat=True))


@dataclass(frozen=True)
class Guard:
    """What one source may change on one object type, computed once per page."""

    object_type: str
    source: str
    writable: tuple[str, ...]
    guarded: dict[str, str]  # field -> owner that is connected and is not the source

    @classmethod
    def for_source(cls, object_type: str, fields: list[str], source: str) -> Guard:
        own, connected = owners(), connected_roles()
        guarded = {
            f: own[(object_type, f)]
            for f in fields
            if (object_type, f) in own and own[(object_type, f)] != source and own[(object_type, f)] in connected
        }
        return cls(object_type, source, tuple(f for f in fields if f not in guarded), guarded)


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):  # a discount percent: exceptions keep their detail as JSON
        return format(value.normalize(), "f")
    return value.isoformat() if isinstance(value, date) else value


def fingerprint(object_type: str, entity_code: str, code: str, field: str, source: str) -> str:
    return f"{CODE}:{object_type}:{entity_code}:{code}:{field}:{source}"[:200]


def active_conflicts(object_type: str):
    return ExceptionItem.objects.filter(
        code=CODE, status__in=ACTIVE_STATUSES, fingerprint__startswith=f"{CODE}:{object_type}:"
    )


def conflicts_record(
    *,
    guard: Guard,
    rows: dict[tuple[str, str], Any],
    incoming: dict[tuple[str, str], dict],
    source_name: str,
    connection=None,
) -> tuple[int, int]:
    """After a page was stored: raise a conflict for every guarded field the source sees differently,
    and resolve the conflicts of these records that no longer hold. `rows` are the stored objects
    (re-read after the write), `incoming` the values the source sent, both keyed by (entity, code).
    Returns (raised, resolved)."""
    label = OBJECTS[guard.object_type][0].lower()
    raised: set[str] = set()
    for key, values in incoming.items():
        obj = rows.get(key)
        if obj is None:
            continue
        for field, owner in guard.guarded.items():
            if field not in values or values[field] == getattr(obj, field):
                continue
            if getattr(obj, field) in ("", None):
                # A blank the owner never filled: take the sender's value until the owner says otherwise.
                type(obj).objects.filter(pk=obj.pk).update(**{field: values[field]})
                setattr(obj, field, values[field])
                continue
            fp = fingerprint(guard.object_type, key[0], key[1], field, guard.source)
            current, new = jsonable(getattr(obj, field)), jsonable(values[field])
            name = f" ({obj.name})" if getattr(obj, "name", "") and field != "name" else ""
            message = (
                f"{source_name} changed the {field_label(field)} of {label} {key[1]}{name} in {key[0]} to {new!r}, "
                f"but {role_label(owner)} owns that field and says {current!r}. The change was not applied."
            )
            exception_item_raise(
                code=CODE,
                message=message,
                fp=fp,
                connection=connection,
                detail={
                    "object": guard.object_type,
                    "entity": key[0],
                    "code": key[1],
                    "field": field,
                    "current": current,
                    "incoming": new,
                    "source": guard.source,
                    "source_name": source_name,
                    "owner": owner,
                },
                root_cause=f"{guard.object_type}.{field} from {guard.source}",
                search_extra=f"{key[0]} {key[1]} {getattr(obj, 'name', '')} {field}",
            )
            raised.add(fp)
    # Conflicts on these records that no longer hold: the sender now agrees, or the owner came round.
    stale = []
    for item in active_conflicts(guard.object_type).filter(detail__code__in=sorted({k[1] for k in rows})):
        d = item.detail
        key = (d.get("entity"), d.get("code"))
        obj = rows.get(key)
        if obj is None or item.fingerprint in raised:
            continue
        same_sender = d.get("source") == guard.source and key in incoming
        if same_sender or jsonable(getattr(obj, d.get("field"), None)) == d.get("incoming"):
            stale.append(item)
    resolved = (
        exception_items_resolve(items=stale, action="rule_passed", reason="The systems agree on this value now.")
        if stale
        else 0
    )
    return len(raised), resolved


@transaction.atomic
def ownership_set(*, object_type: str, field: str, owner: str, actor, reason: str = "") -> int:
    """Make `owner` the source of record for one field; apply the values it was waiting to change.
    Returns how many conflicts that resolved."""

    if object_type not in OBJECTS or field not in OBJECTS[object_type][2]:
        raise OwnershipError(f"{object_type}.{field} is not a field whose owner can be set.")
    if owner not in Connection.Role.values:
        raise OwnershipError(f"{owner!r} is not a kind of system (choose one of {', '.join(Connection.Role.values)}).")
    if owners()[(object_type, field)] == owner:
        raise OwnershipError(
            f"{role_label(owner)} already owns the {field_label(field)} of a {OBJECTS[object_type][0].lower()}."
        )
    FieldOwnership.objects.create(
        object_type=object_type, field=field, owner=owner, changed_by=actor, reason=reason.strip()[:2000]
    )
    model = STREAMS[OBJECTS[object_type][1]][0]
    resolved = 0
    who = actor.get_username() if actor else "the system"
    applied = set()
    for item in active_conflicts(object_type).filter(detail__field=field, detail__source=owner):
        d = item.detail
        value = field_value(field, {field: d.get("incoming")})
        model.objects.filter(entity__code=d.get("entity"), code=d.get("code")).update(**{field: value})
        applied.add((d.get("entity"), d.get("code")))
        resolved += exception_items_resolve(
            items=[item],
            action="owner_changed",
            actor=actor,
            reason=f"{who} made {role_label(owner)} the owner of the {field_label(field)}; its value {d.get('incoming')!r} was applied.",
        )
    if applied:  # an applied value (an employee active again...) wakes what was snoozed until it
        rows = model.objects.filter(code__in={c for _, c in applied}).select_related("entity")
        master_data_wake(
            stream=OBJECTS[object_type][1],
            rows={(o.entity.code, o.code): o for o in rows if (o.entity.code, o.code) in applied},
            source=role_label(owner),
        )
    return resolved


def employees_field_update(
    *, field: str, values: dict[str, str], source: str, source_name: str, connection=None
) -> int:
    """One field of employees known only by number (the approval engine's managers), under ownership.

    Returns how many employees were changed; a value the source may not change becomes a conflict."""
    guard = Guard.for_source("employee", [field], source)
    rows = {(e.entity.code, e.code): e for e in Employee.objects.filter(code__in=list(values)).select_related("entity")}
    incoming = {key: {field: values[key[1]]} for key in rows}
    changed = 0
    if field in guard.writable:
        for key, emp in rows.items():
            if getattr(emp, field) != values[key[1]]:
                changed += Employee.objects.filter(pk=emp.pk).update(**{field: values[key[1]]})
        if not active_conflicts("employee").exists():
            return changed
    before = {key: getattr(emp, field) for key, emp in rows.items()}
    conflicts_record(guard=guard, rows=rows, incoming=incoming, source_name=source_name, connection=connection)
    return changed + sum(1 for key, emp in rows.items() if getattr(emp, field) != before[key])


# --- a linked supplier's tax id against the ERP vendor's ------------------------------------------------


def supplier_tax_id_conflicts(
    *, system: str, links: list[MasterDataLink], vendors: ErpVendors, connection
) -> tuple[int, int]:
    """The ERP owns a vendor's tax id. A linked external supplier that says otherwise is shown as an
    OWNERSHIP_CONFLICT (as master data from a non-owner is), never written to the vendor master.

    One item per link (two Coupa suppliers linked to one vendor are two questions). An item
    resolves itself once both say the same (compared normalized: "DE 136 695 976" = "DE136695976"),
    or once its link no longer points at that vendor (re-pointed, rejected, unmatched).
    Returns (raised, resolved)."""
    links = [link for link in links if link.pk]
    if not links:
        return 0, 0
    confirmed = [link for link in links if link.status == MasterDataLink.Status.CONFIRMED and link.code]
    source = connection.role if connection is not None else Connection.Role.PROCUREMENT.value
    owner = Guard.for_source("supplier", ["tax_id"], source).guarded.get("tax_id") if confirmed else None
    source_name = connection.name if connection is not None else system_label(system)
    raised: set[str] = set()
    for link in confirmed if owner else []:  # no owner: the sender owns tax ids now, or the ERP is not connected
        vendor = next((v for v in vendors.by_code.get(link.code, []) if v.entity_code == link.entity_code), None)
        if vendor is None:
            continue
        theirs, ours = normalize_tax_id(link.tax_id)[0], normalize_tax_id(vendor.tax_id)[0]
        if not theirs or not ours or theirs == ours:
            continue
        fp = fingerprint(
            "supplier", link.entity_code, link.code, "tax_id", f"{source}:{link.system}:{link.external_id}"
        )
        exception_item_raise(
            code=CODE,
            fp=fp,
            connection=connection,
            message=(
                f"{source_name} has tax id {link.tax_id!r} for supplier '{link.external_name}' "
                f"({link.external_number or link.external_id}), which is linked to "
                f"{vendor.describe()}; {role_label(owner)} owns the tax id and says {vendor.tax_id!r}. "
                "The ERP's value is kept: check which is right before paying."
            ),
            detail={
                "object": "supplier",
                "entity": link.entity_code,
                "code": link.code,
                "field": "tax_id",
                "current": vendor.tax_id,
                "incoming": link.tax_id,
                "source": source,
                "source_name": source_name,
                "owner": owner,
                "link": link.pk,
            },
            root_cause=f"supplier.tax_id from {source}",
            search_extra=f"{link.entity_code} {link.code} {vendor.name} {link.external_name} tax_id",
        )
        raised.add(fp)
    return len(raised), supplier_tax_id_conflicts_close(links, keep=raised)


def supplier_tax_id_conflicts_close(links: list[MasterDataLink], keep: set[str] = frozenset()) -> int:
    """Resolve the tax id conflicts of these links, except those just raised (`keep`)."""
    stale = [
        i
        for i in active_conflicts("supplier").filter(
            detail__field="tax_id", detail__link__in=[link.pk for link in links]
        )
        if i.fingerprint not in keep
    ]
    return (
        exception_items_resolve(
            items=stale,
            action="rule_passed",
            reason="The systems agree on this value now, or the link no longer points at this vendor.",
        )
        if stale
        else 0
    )
