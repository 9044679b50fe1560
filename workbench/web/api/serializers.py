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


class CorrectionSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="DocumentLine id")
    field = serializers.ChoiceField(choices=["cost_center", "date", "tax_code", "project"])
    value = serializers.CharField(max_length=40)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
