"""App role assignments of the workbench application: who signs in with which role, on which entities.

In Entra an enterprise application's app roles are assigned to users (or groups) apart from the
user object; the ID token carries them in ``roles``. The sandbox assigns them by a rule on the
directory user's cost center (``RULES``), so every seeded world has people in each role; an
assignment set at run time (``POST /sandbox/app-roles``) replaces the rule for that user. The
legal entities a person works on travel in the ``entities`` claim: codes, or ``"*"`` for all.
"""

from __future__ import annotations

from .protocol import ENT

ANALYST, MANAGER, ENGINEER, ADMIN, AUDITOR = (
    "Workbench.Analyst",
    "Workbench.Manager",
    "Workbench.Engineer",
    "Workbench.Admin",
    "Workbench.Auditor",
)
APP_ROLES = {
    ANALYST: "Finance analyst: triage and fix finance exceptions",
    MANAGER: "Finance manager: approve overrides and variances",
    ENGINEER: "Integration engineer: technical exceptions, sync runs",
    ADMIN: "Workbench administrator",
    AUDITOR: "Auditor: read-only, with the audit trail",
}
ALL = "*"
OWN = "own"  # the legal entity of the user (the enterprise extension's ``organization``)

# cost center -> (role, entity scope); a finance person with reports is a manager.
RULES = {
    "FIN": (ANALYST, OWN),
    "PURCH": (ANALYST, OWN),
    "IT": (ENGINEER, ALL),
    "LEGAL": (AUDITOR, ALL),
    "ADM": (ADMIN, ALL),
}
NONE = {"roles": [], "entities": []}


def by_rule(user: dict, has_reports: bool) -> dict:
    ext = user.get(ENT, {})
    rule = RULES.get(str(ext.get("costCenter") or ""))
    if rule is None:
        return dict(NONE)
    role, scope = rule
    if role == ANALYST and has_reports and ext.get("costCenter") == "FIN":
        role = MANAGER
    entities = [ALL] if scope == ALL else [ext["organization"]] if ext.get("organization") else []
    return {"roles": [role], "entities": entities, "source": "rule"}


def normalized(body: dict) -> dict:
    """An assignment as ``POST /sandbox/app-roles`` writes it: known roles only, entity codes as text."""
    roles = body.get("roles") or []
    entities = body.get("entities") or []
    if isinstance(roles, str):
        roles = [roles]
    if isinstance(entities, str):
        entities = [entities]
    unknown = [r for r in roles if r not in APP_ROLES]
    if unknown:
        raise ValueError(f"unknown app roles {unknown}; this application defines {sorted(APP_ROLES)}")
    return {"roles": [str(r) for r in roles], "entities": [str(e) for e in entities], "source": "assigned"}


def rules_text() -> list[tuple[str, str, str]]:
    """(cost center, role, scope) rows for the console."""
    rows = []
    for cc, (role, scope) in RULES.items():
        where = "all entities" if scope == ALL else "their own entity"
        rows.append((cc, role, where))
        if cc == "FIN":
            rows.append(("FIN, with reports", MANAGER, where))
    return rows
