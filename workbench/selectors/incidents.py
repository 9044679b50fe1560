"""What a connection outage holds: the writes waiting for it, their documents and their money.

An outage is one CONNECTOR_UNAVAILABLE item (sync/health.py). While it lasts, the connection's
outbound writes are not attempted: they wait, pending, until it answers again. The money they hold
is added up per currency only (never across currencies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Sum

from workbench.models import Connection, Document, ExceptionEvent, ExceptionItem, OutboundWrite
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.roles import entity_ids, in_scope

INCIDENT_CODE = "CONNECTOR_UNAVAILABLE"
HELD = [OutboundWrite.Status.PENDING, OutboundWrite.Status.SENDING]
SHOWN = 200  # documents listed on the incident's page; the totals count them all


@dataclass
class Holdings:
    documents: list[Document] = field(default_factory=list)  # the first SHOWN, newest write first
    count: int = 0  # documents held
    totals: list[tuple[str, int, Decimal]] = field(default_factory=list)  # (currency, documents, total)
    other_writes: int = 0  # writes that are not about a document (journals, approval tasks...)

    @property
    def more(self) -> int:
        return max(0, self.count - len(self.documents))


def held_writes(connection: Connection):
    return OutboundWrite.objects.filter(connection=connection, status__in=HELD)


def incident_holdings(connection: Connection, *, user=None) -> Holdings:
    """The documents (in the person's entities, when `user` is given) whose writes the outage holds."""
    writes = held_writes(connection)
    docs = Document.objects.filter(pk__in=writes.filter(document__isnull=False).values("document_id"))
    if user is not None:
        docs = in_scope(docs, user)
    totals = [
        (row["currency"], row["n"], row["total"])
        for row in docs.order_by().values("currency").annotate(n=Count("id"), total=Sum("total")).order_by("currency")
    ]
    return Holdings(
        documents=list(docs.select_related("entity").order_by("-id")[:SHOWN]),
        count=sum(n for _, n, _ in totals),
        totals=totals,
        other_writes=writes.filter(document__isnull=True).count() if user is None or _all_entities(user) else 0,
    )


def _all_entities(user) -> bool:
    return entity_ids(user) is None


def incident_of(connection: Connection) -> ExceptionItem | None:
    """The connection's outage item, if it is active."""
    return (
        ExceptionItem.objects.filter(code=INCIDENT_CODE, connection=connection, status__in=ACTIVE_STATUSES)
        .order_by("-id")
        .first()
    )


def incident_since(item: ExceptionItem) -> datetime:
    """When this outage began: the item's last raise or reopening (an item is reused across outages)."""
    at = (
        ExceptionEvent.objects.filter(item=item, action__in=["raised", "reopened"])
        .order_by("-at", "-id")
        .values_list("at", flat=True)
        .first()
    )
    return at or item.opened_at


@dataclass
class HeldBy:
    item: ExceptionItem
    connection: Connection
    since: datetime
    what: str  # "is not answering", "rejects our credentials"


def incident_holding(document: Document) -> HeldBy | None:
    """The outage that holds this document's write, if one does."""
    write = (
        OutboundWrite.objects.filter(document=document, status__in=HELD, connection__health=Connection.Health.DOWN)
        .select_related("connection")
        .order_by("id")
        .first()
    )
    if write is None:
        return None
    item = incident_of(write.connection)
    if item is None:
        return None
    what = item.detail.get("what") or "is not answering"
    return HeldBy(item=item, connection=write.connection, since=incident_since(item), what=what)
