from .access import ApiToken, UserScope
from .accruals import AccrualJournal, AccrualJournalEvent
from .alerts import AlertChatDelivery, AlertFiring, AlertRule, BacklogSample
from .audit import AuditHead, AuditRecord, DocumentEvent
from .bulk import BulkOutcome
from .calendars import BusinessCalendar, CalendarDay, CloseTimetable
from .collaboration import Comment, NotificationPreference, Watch
from .connections import Connection
from .documents import Document, DocumentLine, DocumentRef
from .exceptions import ExceptionEvent, ExceptionGroup, ExceptionItem
from .governance import (
    Evidence,
    FieldOwnership,
    MasterDataLink,
    OverridePolicy,
    OverrideReason,
    OverrideRequest,
)
from .ledger import ErpPosting, ReconciliationSettings
from .mappings import MappingRule, MappingRuleVersion, MappingRun
from .masterdata import (
    AccountingPeriod,
    CostCenter,
    Currency,
    Employee,
    GLAccount,
    LegalEntity,
    PaymentTerm,
    Project,
    TaxCode,
)
from .notifications import Notification
from .outbox import OutboundWrite, write_key
from .procurement import (
    ApprovalDelegation,
    ApprovalRule,
    ApprovalTask,
    Budget,
    MatchTolerance,
    PurchaseCategory,
    Supplier,
    SupplierContract,
)
from .saved_views import RoleDefaultView, SavedView
from .work_jobs import WorkJob

__all__ = [
    "Comment",
    "NotificationPreference",
    "Watch",
    "AlertChatDelivery",
    "AlertFiring",
    "AlertRule",
    "BacklogSample",
    "BulkOutcome",
    "BusinessCalendar",
    "CalendarDay",
    "CloseTimetable",
    "RoleDefaultView",
    "SavedView",
    "Notification",
    "WorkJob",
    "AccrualJournal",
    "AccrualJournalEvent",
    "AuditHead",
    "AuditRecord",
    "Evidence",
    "OverridePolicy",
    "OverrideReason",
    "OverrideRequest",
    "ApiToken",
    "UserScope",
    "AccountingPeriod",
    "ApprovalDelegation",
    "ApprovalRule",
    "ApprovalTask",
    "Budget",
    "MatchTolerance",
    "OutboundWrite",
    "PurchaseCategory",
    "Supplier",
    "SupplierContract",
    "Connection",
    "CostCenter",
    "Currency",
    "Document",
    "DocumentEvent",
    "DocumentLine",
    "DocumentRef",
    "Employee",
    "ErpPosting",
    "ReconciliationSettings",
    "ExceptionEvent",
    "ExceptionGroup",
    "ExceptionItem",
    "FieldOwnership",
    "MasterDataLink",
    "GLAccount",
    "LegalEntity",
    "MappingRule",
    "MappingRuleVersion",
    "MappingRun",
    "PaymentTerm",
    "Project",
    "TaxCode",
    "write_key",
]
