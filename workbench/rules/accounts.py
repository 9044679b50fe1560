"""GL accounts the ERP accepts: a line coded to an account the ERP would refuse is caught before posting.

BC refuses a line on a blocked account, on a heading or total (only `Posting` accounts take entries)
and on an account without direct posting (control accounts only the system posts to). An account
the ERP does not have at all is refused too; that is judged only once the entity's chart has been
pulled, so a workbench without GL accounts synced yet does not hold every document.
"""

from __future__ import annotations

from workbench.models import DocumentLine

from . import Finding, rule

CODE = "BLOCKED_GL_ACCOUNT"
UNKNOWN = "does not exist in the ERP"


def line_account(ln, po_lines: dict) -> str:
    """The account the posting payload sends for this line: a supplier invoice's comes from its PO line."""
    if ln.po_line_id:
        po_line = po_lines.get(ln.po_line_id)
        if po_line is None and DocumentLine.po_line.is_cached(ln):
            po_line = ln.po_line
        if po_line is not None and po_line.gl_account:
            return po_line.gl_account
    return ln.gl_account


def _po_lines(doc, lines, ctx) -> dict:
    if doc.kind != "supplier_invoice":
        return {}
    ctx.p2p.match(doc, lines)  # cached per document: assigns each line its PO line, as posting uses it
    if not doc.po_number:
        return {}
    return {p.pk: p for p in ctx.p2p.po_lines.get((doc.entity_id, doc.po_number), [])}


@rule(CODE, kinds=("expense_report", "requisition", "supplier_invoice"))
def blocked_gl_account(doc, lines, ctx):
    if doc.entity_id is None:
        return
    chart = ctx.gl_accounts.get(doc.entity_id)
    if not chart:
        return
    po_lines = _po_lines(doc, lines, ctx)
    for ln in lines:
        account = line_account(ln, po_lines).strip()
        if not account:
            continue
        why = chart.get(account, UNKNOWN)
        if not why:
            continue
        yield Finding(
            CODE,
            f"Line {ln.line_no}: GL account '{account}' {why} for {doc.entity_code}; "
            "the ERP would refuse to post it. Recode the line or have the account opened in the ERP.",
            line=ln,
            root_cause=account,
            detail={"value": account, "account": account},
        )
