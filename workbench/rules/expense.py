"""Rules for expense reports (several also run on requisitions). Each returns findings; none means it passes."""

from __future__ import annotations

from . import Finding, rule


@rule("UNKNOWN_ENTITY", kinds=("expense_report", "requisition", "supplier_invoice"))
def unknown_entity(doc, lines, ctx):
    if doc.entity_id is None and not doc.entity_code:
        # E-invoices name only the buyer; the entity comes from the PO or the supplier, when we know them.
        yield Finding(
            "UNKNOWN_ENTITY",
            f"The {doc.get_kind_display().lower()} names no legal entity of ours"
            + (f" and its PO {doc.po_number} is not known" if doc.po_number else " and no PO")
            + "; check the buyer it was addressed to.",
            root_cause="(none)",
        )
    elif doc.entity_id is None:
        yield Finding(
            "UNKNOWN_ENTITY",
            f"Legal entity '{doc.entity_code}' is not in the ERP's company list.",
            root_cause=doc.entity_code,
        )


@rule("INACTIVE_EMPLOYEE")
def inactive_employee(doc, lines, ctx):
    if doc.entity_id is None:
        return
    emp = ctx.employees.get((doc.entity_id, doc.party_code))
    if emp is None:
        yield Finding(
            "INACTIVE_EMPLOYEE",
            f"Employee {doc.party_code} ({doc.party_name}) does not exist in the ERP for {doc.entity_code}.",
            root_cause=doc.party_code,
        )
    elif emp.status != "active":
        yield Finding(
            "INACTIVE_EMPLOYEE",
            f"Employee {doc.party_code} ({emp.name}) is {emp.status}; the report cannot be paid to them as is.",
            root_cause=doc.party_code,
        )


@rule("MISSING_COST_CENTER", kinds=("expense_report", "requisition"))
def missing_cost_center(doc, lines, ctx):
    for ln in lines:
        if not ln.cost_center.strip():
            yield Finding(
                "MISSING_COST_CENTER",
                f"Line {ln.line_no} ({ln.category_name or ln.category}) has no cost center.",
                line=ln,
                root_cause=doc.party_code,
            )


@rule("UNKNOWN_COST_CENTER", kinds=("expense_report", "requisition"))
def unknown_cost_center(doc, lines, ctx):
    if doc.entity_id is None:
        return
    known = ctx.cost_centers.get(doc.entity_id, set())
    blocked = ctx.blocked_cost_centers.get(doc.entity_id, set())
    for ln in lines:
        if ln.cost_center.strip() and ln.cost_center not in known:
            why = (
                "is blocked in the ERP (it refused a posting to it)"
                if ln.cost_center in blocked
                else "does not exist in the ERP"
            )
            yield Finding(
                "UNKNOWN_COST_CENTER",
                f"Line {ln.line_no}: cost center '{ln.cost_center}' {why} for {doc.entity_code}.",
                line=ln,
                root_cause=ln.cost_center,
                detail={"value": ln.cost_center},
            )


@rule("CLOSED_PERIOD", kinds=("expense_report", "requisition"))
def closed_period(doc, lines, ctx):
    if doc.entity_id is None:
        return
    for ln in lines:
        if ln.date is None:
            continue
        period = ctx.period_for(doc.entity_id, ln.date)
        if period is None:
            yield Finding(
                "CLOSED_PERIOD",
                f"Line {ln.line_no} is dated {ln.date:%Y-%m-%d}; {doc.entity_code} has no accounting period for that date.",
                line=ln,
                root_cause=f"{ln.date:%Y-%m}",
            )
        elif period.closed:
            yield Finding(
                "CLOSED_PERIOD",
                f"Line {ln.line_no} is dated {ln.date:%Y-%m-%d}, in period {period.code}, which is closed in the ERP for {doc.entity_code}.",
                line=ln,
                root_cause=period.code,
                detail={"period": period.code},
            )


@rule("INVALID_TAX_CODE")
def invalid_tax_code(doc, lines, ctx):
    if doc.entity_id is None:
        return
    known = ctx.tax_codes.get(doc.entity_id, set())
    for ln in lines:
        if ln.tax_code and ln.tax_code not in known:
            yield Finding(
                "INVALID_TAX_CODE",
                f"Line {ln.line_no}: tax code '{ln.tax_code}' is not valid in the ERP for {doc.entity_code}.",
                line=ln,
                root_cause=ln.tax_code,
                detail={"value": ln.tax_code},
            )
