"""The directory's starting Users: every employee of the shared world, as Entra would provision them.

Each User has the enterprise extension (employee number, cost center, organization = legal entity,
department, manager by SCIM id) and ``externalId`` = employee number. Users were provisioned four a
minute, 90 days back (so several share a ``meta.lastModified``); leavers were changed 60 days later.
A huge directory's stamps stop at ``seeded_until(today)``: seeded history never lies ahead of the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import BLOCKED_COST_CENTER, COST_CENTERS, build_world, seeded_until, stable_guid

from .protocol import CORE, ENT, scim_time
from .rules import versioned

DEPARTMENTS = dict([*COST_CENTERS, BLOCKED_COST_CENTER])


def seed_users(*, seed: int, today: date, n_employees: int, n_lines: int) -> dict[str, dict]:
    """User resources by id, versioned."""
    world = build_world(seed=seed, today=today, n_employees=n_employees, n_lines=n_lines)
    managers = build_p2p(world, seed=seed).managers
    ids = {e.code: stable_guid("scim-user", seed, e.code) for e in world.employees}
    start = datetime.combine(today - timedelta(days=90), datetime.min.time(), UTC) + timedelta(hours=8)
    until = seeded_until(today)
    users = {}
    for i, e in enumerate(world.employees):
        # Provisioned in batches of four per minute, so several users share a lastModified.
        created = min(until, start + timedelta(minutes=i // 4))
        modified = created if e.status == "Active" else min(until, start + timedelta(days=60, minutes=i))
        ext = {
            "employeeNumber": e.code,
            "costCenter": e.cost_center,
            "organization": e.entity,
            "department": DEPARTMENTS.get(e.cost_center, e.cost_center),
        }
        if managers.get(e.code) in ids:
            ext["manager"] = {"value": ids[managers[e.code]]}
        user = {
            "schemas": [CORE, ENT],
            "id": ids[e.code],
            "externalId": e.code,
            "userName": e.email,
            "name": {"givenName": e.first, "familyName": e.last, "formatted": e.name},
            "displayName": e.name,
            "emails": [{"value": e.email, "type": "work", "primary": True}],
            "active": e.status == "Active",
            ENT: ext,
            "meta": {"resourceType": "User", "created": scim_time(created), "lastModified": scim_time(modified)},
        }
        users[user["id"]] = versioned(user)
    return users
