"""Keep an outage item's money current: what it holds while the connection is down, what it released.

The item's `detail["held"]` keeps the per-currency breakdown (documents and total per currency;
currencies are never added together). Its own `amount_at_risk`/`currency`, which the queue shows
and sorts by, are those of the currency most held documents are in (ties: alphabetical), so the
figure on the queue is a real sum in one currency; the item page shows every currency.

Called by sync when a connection fails (each failed probe, so writes queued meanwhile are counted
within a probe's interval) and when it recovers (the held writes are released: `detail["released"]`
keeps what was held, and nothing is at risk any more).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from workbench.models import Connection, ExceptionEvent, ExceptionItem
from workbench.money import fmt
from workbench.selectors.incidents import INCIDENT_CODE, incident_holdings


def held_summary(connection: Connection) -> dict:
    """Every document the outage holds, whatever entity: the item's own figures (JSON-ready)."""
    h = incident_holdings(connection)
    return {
        "documents": h.count,
        "other_writes": h.other_writes,
        "totals": [{"currency": cur, "documents": n, "total": str(total)} for cur, n, total in h.totals],
    }


def held_words(summary: dict) -> str:
    """ "3 documents (1,200.00 EUR; 50.00 USD) and 1 other write", or "nothing"."""
    docs, others = summary.get("documents", 0), summary.get("other_writes", 0)
    if not docs and not others:
        return "nothing"
    money = "; ".join(fmt(Decimal(t["total"]), t["currency"]) for t in summary.get("totals", []))
    text = f"{docs} document{'s' if docs != 1 else ''}" + (f" ({money})" if money else "")
    if others:
        text += f" and {others} other write{'s' if others != 1 else ''}"
    return text


def headline(summary: dict) -> tuple[Decimal, str] | None:
    """The item's own amount: the total of the currency most held documents are in."""
    totals = summary.get("totals") or []
    if not totals:
        return None
    top = min(totals, key=lambda t: (-t["documents"], t["currency"]))
    return Decimal(top["total"]), top["currency"]


def incident_holdings_refresh(*, connection: Connection, released: bool = False) -> ExceptionItem | None:
    """Bring the connection's outage item up to date with the writes it holds (or has just released)."""
    with transaction.atomic():
        item = (
            ExceptionItem.objects.select_for_update()
            .filter(code=INCIDENT_CODE, connection=connection)
            .order_by("-id")
            .first()
        )
        if item is None:
            return None
        detail = dict(item.detail or {})
        before = detail.get("held")
        summary = held_summary(connection)
        holds = bool(summary["documents"] or summary["other_writes"])
        if released:
            detail.pop("released", None)
            if holds:
                detail["released"] = {**summary, "at": timezone.now().isoformat()}
            reason = f"Released on recovery: {held_words(summary)}"
            summary = {"documents": 0, "other_writes": 0, "totals": []}
        else:
            reason = f"Holds {held_words(summary)}"
        detail["held"] = summary
        top = headline(summary)
        amount, currency = top if top else (Decimal(0), item.currency)
        if before != summary or item.amount_at_risk != amount or item.currency != currency:
            ExceptionItem.objects.filter(pk=item.pk).update(
                detail=detail, amount_at_risk=amount, currency=currency, updated_at=timezone.now()
            )
            item.detail, item.amount_at_risk, item.currency = detail, amount, currency
        # The history says when what it holds changed, not every probe (a failed probe rewrites the
        # item's detail, so the last such event is what is compared).
        last = (
            ExceptionEvent.objects.filter(item=item, action__in=["holdings_changed", "released"])
            .order_by("-at", "-id")
            .values_list("reason", flat=True)
            .first()
        )
        if reason != last and (holds or last is not None):
            action = "released" if released else "holdings_changed"
            ExceptionEvent.objects.create(item=item, action=action, reason=reason, correlation_id=item.correlation_id)
    return item
