from rest_framework import serializers

from workbench.due_dates import discount_amount
from workbench.models import Document, DocumentEvent, DocumentLine, DocumentRef, ExceptionEvent, ExceptionItem


class ExceptionItemSerializer(serializers.ModelSerializer):
    document_number = serializers.CharField(source="document.number", default=None, read_only=True)
    entity = serializers.CharField(source="entity.code", default=None, read_only=True)
    assignee = serializers.CharField(source="assignee.username", default=None, read_only=True)
    age_seconds = serializers.SerializerMethodField()
    overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = ExceptionItem
        fields = [
            "id",
            "code",
            "category",
            "kind",
            "severity",
            "status",
            "message",
            "document",
            "document_number",
            "line",
            "connection",
            "entity",
            "amount_at_risk",
            "currency",
            "owner_team",
            "assignee",
            "root_cause_key",
            "group",
            "opened_at",
            "sla_due_at",
            "close_due_at",
            "resolved_at",
            "age_seconds",
            "overdue",
            "correlation_id",
            "snoozed_until",
            "wait_for",
            "wait_key",
        ]
        read_only_fields = fields

    def get_age_seconds(self, obj) -> int:
        return int(obj.age.total_seconds())


class ExceptionEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = ExceptionEvent
        fields = ["at", "action", "from_status", "to_status", "actor", "reason", "correlation_id"]


class ExceptionItemDetailSerializer(ExceptionItemSerializer):
    events = ExceptionEventSerializer(many=True, read_only=True)
    detail = serializers.JSONField(read_only=True)

    class Meta(ExceptionItemSerializer.Meta):
        fields = ExceptionItemSerializer.Meta.fields + ["detail", "events"]
        read_only_fields = fields


class DocumentLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = DocumentLine
        fields = [
            "id",
            "line_no",
            "date",
            "category",
            "category_name",
            "description",
            "merchant",
            "amount",
            "currency",
            "original_amount",
            "original_currency",
            "gl_account",
            "cost_center",
            "project",
            "tax_code",
        ]


class DocumentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = DocumentRef
        fields = ["system", "kind", "external_id"]


class DocumentEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = DocumentEvent
        fields = ["at", "system", "action", "message", "actor", "correlation_id"]


class DocumentSerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity.code", default=None, read_only=True)
    discount_amount = serializers.SerializerMethodField(
        help_text="Total x discount percent, in the currency's minor units; null without a discount."
    )

    class Meta:
        model = Document
        fields = [
            "id",
            "kind",
            "correlation_id",
            "source_system",
            "source_id",
            "number",
            "name",
            "entity",
            "party_code",
            "party_name",
            "currency",
            "total",
            "version",
            "revision",
            "business_status",
            "financial_status",
            "erp_document_number",
            "erp_fiscal_year",
            "erp_message",
            "submitted_at",
            "approved_at",
            "posted_at",
            "paid_at",
            "document_date",
            "due_date",
            "payment_terms",
            "discount_percent",
            "discount_due_date",
            "discount_amount",
            "payment_terms_note",
        ]
        read_only_fields = fields

    def get_discount_amount(self, doc) -> str | None:
        amount = discount_amount(doc.total, doc.discount_percent, doc.currency)
        return None if amount is None else str(amount)


class DocumentDetailSerializer(DocumentSerializer):
    lines = DocumentLineSerializer(many=True, read_only=True)
    refs = DocumentRefSerializer(many=True, read_only=True)
    events = DocumentEventSerializer(many=True, read_only=True)

    class Meta(DocumentSerializer.Meta):
        fields = DocumentSerializer.Meta.fields + ["lines", "refs", "events"]
        read_only_fields = fields


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(help_text="A username, 'me', or '' to unassign.", allow_blank=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class OverrideSerializer(serializers.Serializer):
    reason_code = serializers.CharField(max_length=30, help_text="One of the admin-managed override reason codes")
    reason = serializers.CharField(max_length=4000)


class SnoozeSerializer(serializers.Serializer):
    until = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Wake at this time (ISO 8601, in the future)."
    )
    wait_for = serializers.ChoiceField(
        choices=ExceptionItem.WaitFor.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="Or wake when this happens (whichever comes first if both are given).",
    )
    wait_key = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="What exactly, e.g. period:NW-US:2026-12, supplier:NW-US:V0001, receipt:PO-1001, connection:3, "
        "employee:NW-US:E0042, cost_center:NW-US:CC100; default: the one the item's code suggests.",
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not attrs.get("until") and not attrs.get("wait_for"):
            raise serializers.ValidationError("Give `until` (a date and time) or `wait_for` (an event).")
        return attrs


class CorrectionSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="DocumentLine id")
    field = serializers.ChoiceField(choices=["cost_center", "date", "tax_code", "project"])
    value = serializers.CharField(max_length=40)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    author = serializers.CharField(source="actor.username", read_only=True)
    at = serializers.DateTimeField(read_only=True)
    body = serializers.CharField(read_only=True, help_text="Plain text, as typed; show it escaped")
    mentioned = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Usernames the @mentions resolved to (and told)"
    )
    replaces = serializers.IntegerField(source="replaces_id", read_only=True, allow_null=True)
    edited = serializers.BooleanField(read_only=True)


class CommentCreateSerializer(serializers.Serializer):
    # The length is checked by the service too (and NUL bytes by DRF's CharField), with the same words as the screen.
    body = serializers.CharField(
        max_length=10_000, help_text="Plain text, at most 10,000 characters; @username mentions"
    )
    replaces = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Id of your own comment this one is a new version of",
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class FoundDocumentSerializer(serializers.Serializer):
    document = DocumentSerializer()
    matched = serializers.ListField(
        child=serializers.CharField(),
        help_text='What matched in which system, e.g. "Business Central document number".',
    )


class FindResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    related = serializers.BooleanField(
        help_text="No document has the id itself; the results refer to it (a purchase order's invoices)."
    )
    truncated = serializers.BooleanField(help_text="More documents matched than are listed.")
    results = FoundDocumentSerializer(many=True)
