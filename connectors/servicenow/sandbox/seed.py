"""The sandbox instance's starting rows: ``sys_user`` from the shared world, and an approval history.

Users are every employee of ``build_world`` (active or not, with their manager) plus the two
accounts every instance has (``admin`` and the integration user, without an employee number).
Approvals cover the first requisitions of ``build_p2p``: the cost center's owner approves first,
that owner's manager second; ordered requisitions were approved, the waiting ones are requested
(a second level "not requested" behind) or were rejected. Users are stamped a minute apart from
60 days back; approvals are created at 09:00 on their requisition's submission day and decided
three hours per level later. Requisitions are submitted before ``today`` (see ``build_p2p``) and a
huge user table's stamps stop at ``seeded_until(today)``: seeded history never lies ahead of the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import build_world, seeded_until, stable_id

from .query import sn_time
from .rules import FINAL

API_USER = "workbench"  # the integration user behind Basic auth (and sys_created_by of API writes)


def seed_tables(*, seed: int, today: date, n_employees: int, n_lines: int) -> tuple[dict[str, dict], dict[str, dict]]:
    """(``sys_user`` rows, ``sysapproval_approver`` rows), each by sys_id."""
    world = build_world(seed=seed, today=today, n_employees=n_employees, n_lines=n_lines)
    p2p = build_p2p(world, seed=seed)
    start = datetime.combine(today - timedelta(days=60), datetime.min.time(), UTC)
    until = seeded_until(today)
    stamp = iter(sn_time(min(until, start + timedelta(minutes=i))) for i in range(10**6))
    users: dict[str, dict] = {}
    by_code: dict[str, str] = {}
    # Non-employee accounts every instance has: they have no employee_number.
    people = [
        ("admin", "", "System", "Administrator", "admin@northwind.example", "true"),
        (API_USER, "", "Workbench", "Integration", "workbench@northwind.example", "true"),
    ]
    people += [
        (e.email.split("@")[0], e.code, e.first, e.last, e.email, "true" if e.status == "Active" else "false")
        for e in world.employees
    ]
    for user_name, code, first, last, email, active in people:
        sys_id = stable_id("sn-user", seed, user_name).lower()
        ts = next(stamp)
        users[sys_id] = {
            "sys_id": sys_id,
            "user_name": user_name,
            "employee_number": code,
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}",
            "email": email,
            "title": "",
            "active": active,
            "manager": "",
            "sys_created_on": ts,
            "sys_created_by": "admin",
            "sys_updated_on": ts,
            "sys_updated_by": "admin",
            "sys_mod_count": "0",
        }
        if code:
            by_code[code] = sys_id
    for code, manager in p2p.managers.items():
        if code in by_code and manager in by_code:
            users[by_code[code]]["manager"] = by_code[manager]

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
            states = (["requested", "not requested"] if waiting <= 2 else ["rejected", "not requested"])[: len(chain)]
        created = datetime.combine(req.submitted, datetime.min.time(), UTC) + timedelta(hours=9)
        for order, (code, state) in enumerate(zip(chain, states, strict=False), start=1):
            sys_id = stable_id("sn-approval", seed, req.number, order).lower()
            decided = created + timedelta(hours=3 * order)
            text = {
                "approved": comments[len(approvals) % 3],
                "rejected": "Rejected: no budget left on this cost center this quarter.",
            }.get(state, "")
            approvals[sys_id] = {
                "sys_id": sys_id,
                "approver": by_code[code],
                "state": state,
                "comments": text,
                "due_date": sn_time(created + timedelta(days=5)),
                "order": str(order),
                "source_table": "x_coupa_requisition",
                "document_id": str(req.coupa_id),
                "sysapproval": "",
                "u_correlation_id": f"seed:requisition:{req.number}:{order}",
                "u_document_number": req.number,
                "u_amount": str(req.total),
                "u_currency": req.currency,
                "short_description": f"Requisition {req.number}: {req.title}",
                "sys_created_on": sn_time(created),
                "sys_created_by": API_USER,
                "sys_updated_on": sn_time(decided if state in FINAL else created),
                "sys_updated_by": users[by_code[code]]["user_name"] if state in FINAL else API_USER,
                "sys_mod_count": "1" if state in FINAL else "0",
            }
    return users, approvals
