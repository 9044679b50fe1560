"""What the workbench says a supplier is owed, to set beside the ERP's vendor balance."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Q, Sum

from workbench.models import Document
from workbench.money import quantize

FIN = Document.FinancialStatus
UNPAID = (FIN.POSTED, FIN.READY_FOR_PAYMENT)


def supplier_open_balance(entity, supplier_code: str) -> dict[str, Decimal]:
    """Currency -> open amount of one supplier in one entity: its booked, unpaid invoices less its
    booked credit notes. A credit note applied to an invoice that is paid was settled with that
    payment (the ERP paid the invoice net of it), so it no longer counts."""
    rows = (
        Document.objects.filter(
            kind=Document.Kind.SUPPLIER_INVOICE,
            entity=entity,
            party_code=supplier_code,
            financial_status__in=UNPAID,
        )
        .exclude(Q(total__lt=0) & Q(corrects__financial_status=FIN.PAID))
        .values("currency")
        .annotate(amount=Sum("total"))
        .order_by("currency")
    )
    return {r["currency"]: quantize(r["amount"], r["currency"]) for r in rows if r["amount"]}
