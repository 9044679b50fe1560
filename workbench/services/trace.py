"""The document trace: every service that changes a document appends what happened here."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from workbench.models import Document, DocumentEvent


def document_event_add(
    *,
    document: Document,
    system: str,
    action: str,
    message: str = "",
    actor=None,
    data: dict | None = None,
    at: datetime | None = None,
) -> DocumentEvent:
    return DocumentEvent.objects.create(
        document=document,
        at=at or timezone.now(),
        system=system,
        action=action,
        message=message,
        actor=actor,
        correlation_id=document.correlation_id,
        data=data or {},
    )


def system_user():
    """The actor of decisions the workbench records on someone else's behalf (an approval engine, a
    credit note): overrides need a person or this named, log-in-less account."""
    return get_user_model().objects.get_or_create(username="workbench", defaults={"is_active": False})[0]
