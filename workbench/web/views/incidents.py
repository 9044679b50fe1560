"""What the item and document pages say about outages: what an incident holds, what holds a document."""

from decimal import Decimal

from django.utils import timezone

from workbench import roles
from workbench.models import Document, ExceptionItem
from workbench.selectors.incidents import INCIDENT_CODE, incident_holding, incident_holdings


def incident_context(item: ExceptionItem, user) -> dict:
    """An outage item's page: the documents it holds (live, in the person's entities) and what it released."""
    if item.code != INCIDENT_CODE or item.connection_id is None:
        return {}
    released = (item.detail or {}).get("released") or None
    if released:
        released = {
            **released,
            "totals": [{**t, "total": Decimal(t["total"])} for t in released.get("totals", [])],
        }
    holdings = incident_holdings(item.connection, user=user) if item.is_active else None
    return {"holdings": holdings, "released": released}


def held_by_context(document: Document | None, user) -> dict:
    """The outage holding this document's posting, if any; linked only for those who may open it."""
    held = incident_holding(document) if document is not None else None
    if held is None:
        return {}
    return {
        "held_by": held,
        # An outage belongs to no entity: only people who work on all entities may open its item.
        "held_by_visible": roles.entity_allowed(user, held.item.entity_id),
        "now_day": timezone.now().strftime("%Y%m%d"),
    }
