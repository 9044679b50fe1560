"""Procure-to-pay API: the canonical services other systems call.

- `POST /api/p2p/requisitions/validate/`  synchronous check before approval routing (Coupa Call Out target)
- `POST /api/p2p/budgets/check/`          what is left of a budget
- `POST /api/p2p/requisitions/`           create a requisition (stored, validated, routed for approval)
- `POST /api/p2p/purchase-orders/`        create the ERP PO of an approved requisition (idempotent)
- `POST /api/p2p/approvals/decisions/`    an approval decision from the approval engine (push)
- `GET  /api/p2p/invoices/<id>/status/`   an invoice's match, posting and payment status
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, throttle_scope
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.response import Response

from sync.jobs.einvoice_inbox import einvoice_receive
from workbench.errors import WorkbenchError
from workbench.models import ApprovalTask, Document, ExceptionItem, LegalEntity
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.rules.p2p_context import BudgetPositions
from workbench.services.approvals import (
    ApproverRefused,
    approval_decisions_apply,
    decision_approver,
    requisition_send_for_approval,
)
from workbench.services.p2p_documents import check_p2p_record, p2p_documents_upsert
from workbench.services.postings import po_number_for, postings_enqueue
from workbench.services.requisitions import requisition_check
from workbench.services.validation import documents_validate
from workbench.web.scoping import documents_for

from .serializers import ErrorSerializer

ERRORS = {400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}


class LineSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)
    category = serializers.CharField(max_length=40, allow_blank=True, required=False)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, min_value=0)
    unit_price = serializers.DecimalField(max_digits=18, decimal_places=6, required=False, min_value=0)
    amount = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, min_value=0)
    currency = serializers.CharField(max_length=3, required=False, allow_blank=True)
    uom = serializers.CharField(max_length=10, required=False, allow_blank=True)
    gl_account = serializers.CharField(max_length=40, allow_blank=True, required=False)
    cost_center = serializers.CharField(max_length=40, allow_blank=True, required=False)
    project = serializers.CharField(max_length=40, allow_blank=True, required=False)
    supplier_code = serializers.CharField(max_length=40, allow_blank=True, required=False)
    need_by_date = serializers.DateField(required=False, allow_null=True)


class RequisitionSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    number = serializers.CharField(max_length=60, required=False, allow_blank=True)
    entity = serializers.CharField(max_length=20)
    requester_code = serializers.CharField(max_length=40)
    title = serializers.CharField(max_length=300, required=False, allow_blank=True)
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3)
    total = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, min_value=0)
    submitted_at = serializers.DateTimeField(required=False, allow_null=True)
    lines = LineSerializer(many=True, allow_empty=False)


FindingSerializer = inline_serializer(
    "Finding",
    {
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "line": serializers.IntegerField(allow_null=True),
    },
)
ValidationAnswer = inline_serializer(
    "RequisitionValidation",
    {
        "status": serializers.ChoiceField(["valid", "invalid"]),
        "messages": serializers.ListField(child=serializers.CharField()),
        "findings": FindingSerializer,
    },
)


def _plain(data: dict) -> dict:
    """Validated data back to the canonical record's plain types (Decimal kept, dates as ISO text)."""
    out = {}
    for k, v in data.items():
        if isinstance(v, list):
            out[k] = [_plain(x) for x in v]
        elif hasattr(v, "isoformat"):
            out[k] = v.isoformat()
        else:
            out[k] = v
    return out


@extend_schema(request=RequisitionSerializer, responses={200: ValidationAnswer, 400: ErrorSerializer})
@api_view(["POST"])
def requisition_validate(request):
    """Check a requisition before approval routing: cost objects valid, period open, supplier eligible, budget available."""
    body = RequisitionSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        result = requisition_check(_plain(body.validated_data))
    except ValueError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(
        {
            "status": result.status,
            "messages": result.messages,
            "findings": [
                {"code": f.code, "message": f.message, "line": getattr(f.line, "line_no", None)}
                for f in result.findings
            ],
        }
    )


class BudgetQuery(serializers.Serializer):
    entity = serializers.CharField(max_length=20)
    cost_center = serializers.CharField(max_length=40)
    gl_account = serializers.CharField(max_length=40)
    period = serializers.RegexField(r"^\d{4}-(0[1-9]|1[0-2])$")
    amount = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)


@extend_schema(
    request=BudgetQuery,
    responses={
        200: inline_serializer(
            "BudgetPosition",
            {
                "budget": serializers.DecimalField(max_digits=20, decimal_places=4),
                "committed": serializers.DecimalField(max_digits=20, decimal_places=4),
                "actual": serializers.DecimalField(max_digits=20, decimal_places=4),
                "available": serializers.DecimalField(max_digits=20, decimal_places=4),
                "currency": serializers.CharField(),
                "sufficient": serializers.BooleanField(),
            },
        ),
        400: ErrorSerializer,
        404: ErrorSerializer,
    },
)
@api_view(["POST"])
def budget_check(request):
    """Budget, commitments, actuals and what is available for one entity, cost center, account and period."""
    body = BudgetQuery(data=request.data)
    body.is_valid(raise_exception=True)
    d = body.validated_data
    entity = LegalEntity.objects.filter(code=d["entity"]).first()
    if entity is None:
        return Response(
            {"detail": f"Legal entity {d['entity']!r} is not in the ERP."}, status=status.HTTP_404_NOT_FOUND
        )
    position = BudgetPositions().get(entity.pk, d["cost_center"], d["gl_account"], d["period"])
    if position is None:
        return Response(
            {"detail": f"No budget for {d['cost_center']}/{d['gl_account']} in {d['period']}."},
            status=status.HTTP_404_NOT_FOUND,
        )
    amount = d.get("amount") or Decimal(0)
    # Money as exact decimal strings (a bare Decimal would be rendered as a JSON float).
    return Response(
        {
            "budget": str(position.budget),
            "committed": str(position.committed),
            "actual": str(position.actual),
            "available": str(position.available),
            "currency": entity.currency,
            "sufficient": amount <= position.available,
        }
    )


@extend_schema(
    request=RequisitionSerializer,
    responses={
        201: inline_serializer(
            "RequisitionCreated",
            {"document": serializers.IntegerField(), "status": serializers.CharField(), "findings": FindingSerializer},
        ),
        400: ErrorSerializer,
    },
)
@api_view(["POST"])
def requisition_create(request):
    """Store a requisition, validate it and, if valid, route it for approval (idempotent by external_id)."""
    body = RequisitionSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    record = _plain(body.validated_data)
    record.setdefault("external_id", "")
    if not record["external_id"]:
        return Response(
            {"detail": "external_id is required to create a requisition (it makes the call idempotent)."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    existing = Document.objects.filter(
        kind=Document.Kind.REQUISITION, source_system="api", source_id=record["external_id"]
    ).first()
    if existing is not None:  # a resend: answer with what we have, never move it back to pending
        return _requisition_state(existing, status.HTTP_200_OK)
    record["status"] = "pending_approval"
    for i, ln in enumerate(record["lines"], start=1):
        if ln.get("amount") is None:
            ln["amount"] = (ln.get("quantity") or Decimal(1)) * (ln.get("unit_price") or Decimal(0))
        ln.setdefault("line_no", i)
    record.setdefault("total", sum((ln["amount"] for ln in record["lines"]), Decimal(0)))
    problem = check_p2p_record(Document.Kind.REQUISITION, record)
    if problem:
        return Response({"detail": problem}, status=status.HTTP_400_BAD_REQUEST)
    with transaction.atomic():
        result = p2p_documents_upsert(system="api", kind=Document.Kind.REQUISITION, records=[record])
        doc = (result.touched or result.unchanged)[0]
        if documents_validate(documents=[doc]):
            requisition_send_for_approval(doc)
    return _requisition_state(doc, status.HTTP_201_CREATED)


def _requisition_state(doc: Document, code: int) -> Response:
    items = ExceptionItem.objects.filter(document=doc, status__in=ACTIVE_STATUSES).select_related("line")
    state = (
        "ordered"
        if doc.erp_document_number
        else doc.business_status
        if doc.business_status != "pending"
        else "routed"
        if doc.approval_tasks.exists()
        else "invalid"
    )
    return Response(
        {
            "document": doc.pk,
            "status": state,
            "findings": [
                {"code": i.code, "message": i.message, "line": i.line.line_no if i.line else None} for i in items
            ],
        },
        status=code,
    )


@extend_schema(
    request=inline_serializer("PurchaseOrderCreate", {"requisition": serializers.IntegerField()}),
    responses={
        202: inline_serializer(
            "PurchaseOrderQueued", {"po_number": serializers.CharField(), "status": serializers.CharField()}
        ),
        **ERRORS,
    },
)
@api_view(["POST"])
def purchase_order_create(request):
    """Create the ERP PO of an approved requisition; calling twice queues one PO."""
    req_id = request.data.get("requisition") if isinstance(request.data, dict) else None
    if not isinstance(req_id, int):
        return Response(
            {"detail": "requisition (an integer document id) is required."}, status=status.HTTP_400_BAD_REQUEST
        )
    doc = get_object_or_404(documents_for(request.user), pk=req_id, kind=Document.Kind.REQUISITION)
    if doc.business_status != Document.BusinessStatus.APPROVED:
        return Response(
            {"detail": f"Requisition {doc.number} is {doc.get_business_status_display().lower()}, not approved."},
            status=status.HTTP_409_CONFLICT,
        )
    with transaction.atomic():
        postings_enqueue([doc])
    doc.refresh_from_db()
    return Response(
        {"po_number": doc.erp_document_number or po_number_for(doc), "status": doc.financial_status},
        status=status.HTTP_202_ACCEPTED,
    )


class Decision(serializers.Serializer):
    correlation_key = serializers.CharField(max_length=200)
    state = serializers.ChoiceField(["approved", "rejected"])
    comments = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    approver = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="Only the approval engine's service account names the approver (the one it authenticated); "
        "a person's decision is always recorded as their own.",
    )


@extend_schema(
    request=Decision,
    responses={200: inline_serializer("DecisionApplied", {"applied": serializers.BooleanField()}), **ERRORS},
)
@api_view(["POST"])
def approval_decision(request):
    """A decision on one approval step: by the approver themself, or pushed by the approval engine.

    The approver is the authenticated person (their employee record, by e-mail), never a name in
    the body; only the engine's service account may name the approver it authenticated.
    Segregation of duties is checked here too: nobody approves their own requisition.
    """
    body = Decision(data=request.data)
    body.is_valid(raise_exception=True)
    data = dict(body.validated_data)
    task = (
        ApprovalTask.objects.select_related("document")
        .filter(correlation_key=data["correlation_key"], document__in=documents_for(request.user))
        .first()
    )
    if task is None:
        return Response({"detail": "No approval task with that correlation key."}, status=status.HTTP_404_NOT_FOUND)
    try:
        data["approver"] = decision_approver(user=request.user, task=task, named=data.get("approver", ""))
        with transaction.atomic():
            n = approval_decisions_apply([data])
    except ApproverRefused as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
    except WorkbenchError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return Response({"applied": bool(n)})


@extend_schema(
    responses={
        200: inline_serializer(
            "InvoiceStatus",
            {
                "number": serializers.CharField(),
                "supplier": serializers.CharField(),
                "po_number": serializers.CharField(),
                "match_status": serializers.CharField(),
                "financial_status": serializers.CharField(),
                "erp_document_number": serializers.CharField(),
                "open_exceptions": FindingSerializer,
            },
        ),
        404: ErrorSerializer,
    }
)
@api_view(["GET"])
def invoice_status(request, pk: int):
    doc = get_object_or_404(documents_for(request.user), pk=pk, kind=Document.Kind.SUPPLIER_INVOICE)
    items = ExceptionItem.objects.filter(document=doc, status__in=ACTIVE_STATUSES).select_related("line")
    return Response(
        {
            "number": doc.number,
            "supplier": doc.party_code,
            "po_number": doc.po_number,
            "match_status": doc.match_status or "unmatched",
            "financial_status": doc.financial_status,
            "erp_document_number": doc.erp_document_number,
            "open_exceptions": [
                {"code": i.code, "message": i.message, "line": i.line.line_no if i.line else None} for i in items
            ],
        }
    )


class RawXMLParser(BaseParser):
    """UBL documents arrive as the raw XML body; they are handed over as bytes, unparsed."""

    media_type = "application/xml"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read(MAX_EINVOICE_BYTES + 1)


class TextXMLParser(RawXMLParser):
    media_type = "text/xml"


MAX_EINVOICE_BYTES = 25 * 1024 * 1024
EInvoiceAnswer = inline_serializer(
    "EInvoiceReceived",
    {
        "status": serializers.ChoiceField(["received", "duplicate", "invalid"]),
        "document": serializers.IntegerField(allow_null=True),
        "exception": serializers.IntegerField(allow_null=True),
        "message": serializers.CharField(),
    },
)


@extend_schema(
    request={
        "application/xml": bytes,
        "multipart/form-data": inline_serializer("EInvoiceUpload", {"file": serializers.FileField()}),
    },
    responses={201: EInvoiceAnswer, 200: EInvoiceAnswer, 422: EInvoiceAnswer, 400: ErrorSerializer},
)
@api_view(["POST"])
@throttle_scope("uploads")  # stricter than the per-user rate: each upload parses and validates a file
@parser_classes([RawXMLParser, TextXMLParser, MultiPartParser])
def einvoice_upload(request):
    """Receive a UBL 2.1 / PEPPOL BIS 3 invoice or credit note (raw XML body, or a multipart `file`)."""
    if isinstance(request.data, bytes):
        content, name = request.data, "api.xml"
    else:
        upload = request.data.get("file") if hasattr(request.data, "get") else None
        if upload is None:
            return Response(
                {"detail": "Send the XML as the body (Content-Type: application/xml) or as a multipart 'file'."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        content, name = upload.read(MAX_EINVOICE_BYTES + 1), upload.name
    got = einvoice_receive(content=content, filename=name, channel="API", actor=request.user)
    if got.item is not None:
        return Response(
            {"status": "invalid", "document": None, "exception": got.item.pk, "message": got.item.message},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if got.duplicate_file:
        return Response(
            {
                "status": "duplicate",
                "document": got.document.pk,
                "exception": None,
                "message": "This file was received before; nothing new was stored.",
            }
        )
    return Response(
        {
            "status": "received",
            "document": got.document.pk,
            "exception": None,
            "message": f"Invoice {got.document.number} received.",
        },
        status=status.HTTP_201_CREATED,
    )
