"""What the workbench says a supplier is owed, to set beside the ERP's vendor balance."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Q, Sum

from workbench.models import Document, ErpPosting
from workbench.money import quantize

FIN = Document.FinancialStatus
UNPAID = (FIN.POSTED, FIN.READY_FOR_PAYMENT)


def supplier_open_balance(entity, supplier_code: str) -> dict[str, Decimal]:
    """Currency -> open amount of one supplier in one entity, as booked in the ERP: its unpaid
    invoices less its credit notes, each at the amount we booked (before the tax the ERP computes),
    so it can be set beside the ERP's vendor balance. A credit note applied to an invoice that is
    paid after the credit was booked was settled with that payment (the ERP paid the invoice net of
    it), so it no longer counts; one booked after the payment is a credit the supplier still owes us."""
    rows = (
        ErpPosting.objects.filter(
            kind__in=[ErpPosting.Kind.SUPPLIER_INVOICE, ErpPosting.Kind.CREDIT_MEMO],
            entity=entity,
            superseded_at__isnull=True,
            document__party_code=supplier_code,
            document__financial_status__in=UNPAID,
        )
        .exclude(
            Q(kind=ErpPosting.Kind.CREDIT_MEMO)
            & Q(document__corrects__financial_status=FIN.PAID)
            & Q(document__corrects__paid_at__gte=F("document__posted_at"))
        )
        .values("currency")
        .annotate(amount=Sum("amount"))
        .order_by("currency")
    )
    return {r["currency"]: quantize(r["amount"], r["currency"]) for r in rows if r["amount"]}
