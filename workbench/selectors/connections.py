"""Which configured connection plays which part: the ERP, a document's source, a system by kind."""

from __future__ import annotations

from workbench.models import Connection, Document


def connection_of_role(role: str) -> Connection | None:
    """The enabled connection with this role (erp, expense, procurement, approvals, identity), if any."""
    return Connection.objects.filter(role=role, enabled=True).first()


def erp_connection() -> Connection | None:
    return connection_of_role(Connection.Role.ERP)


def connection_of_system(system: str) -> Connection | None:
    """The enabled connection of a source system ("coupa", "concur"...), if any."""
    return Connection.objects.filter(kind=system, enabled=True).first()


def source_connection(doc: Document) -> Connection | None:
    return connection_of_system(doc.source_system)


def erp_master_data_ready() -> bool:
    """Whether the ERP's master data has been pulled once (documents are judged against it)."""
    erp = erp_connection()
    return erp is not None and erp.master_data_synced_at is not None
