from .audit import DocumentEvent
from .connections import Connection
from .documents import Document, DocumentLine, DocumentRef
from .exceptions import ExceptionEvent, ExceptionGroup, ExceptionItem
from .masterdata import AccountingPeriod, CostCenter, Employee, GLAccount, LegalEntity, Project, TaxCode

__all__ = [
    "AccountingPeriod",
    "Connection",
    "CostCenter",
    "Document",
    "DocumentEvent",
    "DocumentLine",
    "DocumentRef",
    "Employee",
    "ExceptionEvent",
    "ExceptionGroup",
    "ExceptionItem",
    "GLAccount",
    "LegalEntity",
    "Project",
    "TaxCode",
]
