"""REST API: the same selectors, filters and services as the screens."""

from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from workbench.errors import WorkbenchError
from workbench.export_sources import queue_source
from workbench.exports import CONTENT_TYPES, csv_chunks, file_name
from workbench.filters import DocumentFilter, ExceptionItemFilter
from workbench.models import Comment, Document, DocumentLine, ExceptionItem
from workbench.selectors import exception_item_list
from workbench.selectors.discussion import comment_thread
from workbench.selectors.find import document_find
from workbench.services import item_actions as items_service
from workbench.services.comments import comment_add
from workbench.services.documents import document_line_correct
from workbench.services.overrides import override_request
from workbench.services.snooze import exception_item_snooze
from workbench.web.scoping import documents_for, items_for, may_work

from . import serializers as s


class CsvRenderer(BaseRenderer):
    """Lets a client that asks for text/csv through content negotiation; the export streams its own body."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else str(data).encode()


ERRORS = {400: s.ErrorSerializer, 403: s.ErrorSerializer, 404: s.ErrorSerializer, 409: s.ErrorSerializer}


class ExceptionItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Exception items. Filters: code, category, status (or `active`), entity (code), assignee (username, `me`, `none`), age, q."""

    filterset_class = ExceptionItemFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator (also at `check --deploy`)
            return ExceptionItem.objects.none()
        return items_for(self.request.user, exception_item_list())

    def _item_to_work(self):
        item = self.get_object()
        if not may_work(self.request.user, item):
            raise PermissionDenied(f"This is a {item.get_kind_display().lower()} item: not your role's work.")
        return item

    def get_serializer_class(self):
        return s.ExceptionItemDetailSerializer if self.action == "retrieve" else s.ExceptionItemSerializer

    def _act(self, action, *, refused=status.HTTP_409_CONFLICT) -> Response:
        """Run one service on the item; a refusal is a clear 4xx with the service's words."""
        try:
            action(self._item_to_work())
        except WorkbenchError as exc:
            return Response({"detail": str(exc)}, status=refused)
        return Response(s.ExceptionItemDetailSerializer(self.get_object()).data)

    def _valid(self, serializer_class):
        self._item_to_work()  # a missing item is a 404, another role's a 403, before its body is judged
        data = serializer_class(data=self.request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data

    @extend_schema(
        summary="The filtered items as CSV",
        description="The same filters and entity scope as the list, every row (streamed, whatever the size), "
        "in the queue's order. Columns as the queue's CSV export; money as the exact amount beside its currency.",
        responses={(200, "text/csv"): OpenApiTypes.BINARY, 400: s.ErrorSerializer, 403: s.ErrorSerializer},
    )
    @action(detail=False, methods=["get"], url_path="export", renderer_classes=[CsvRenderer, JSONRenderer])
    def export(self, request):
        found = queue_source(self.filter_queryset(self.get_queryset()))
        response = StreamingHttpResponse(csv_chunks(found), content_type=CONTENT_TYPES["csv"])
        response["Content-Disposition"] = f'attachment; filename="{file_name(found, "csv", timezone.localdate())}"'
        return response

    @extend_schema(request=s.AssignSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        name = self._valid(s.AssignSerializer)["assignee"]
        user = (
            request.user if name == "me" else (get_user_model().objects.filter(username=name).first() if name else None)
        )
        if name and user is None:
            return Response({"detail": f"No user named {name!r}."}, status=status.HTTP_400_BAD_REQUEST)
        return self._act(lambda item: items_service.exception_item_assign(item=item, assignee=user, actor=request.user))

    @extend_schema(request=s.OverrideSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def override(self, request, pk=None):
        """Within the code's override policy; above its amount the item waits for a finance manager."""
        data = self._valid(s.OverrideSerializer)
        try:
            override_request(
                item=self._item_to_work(), actor=request.user, reason_code=data["reason_code"], text=data["reason"]
            )
        except WorkbenchError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(s.ExceptionItemDetailSerializer(self.get_object()).data)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="send-back")
    def send_back(self, request, pk=None):
        reason = self._valid(s.ReasonSerializer)["reason"]
        return self._act(
            lambda item: items_service.exception_item_send_back(item=item, reason=reason, actor=request.user)
        )

    @extend_schema(request=None, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._act(lambda item: items_service.exception_item_retry(item=item, actor=request.user))

    @extend_schema(request=s.SnoozeSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def snooze(self, request, pk=None):
        """Set the item aside until a time, or until an event the syncs observe (they wake it and re-validate)."""
        data = self._valid(s.SnoozeSerializer)
        return self._act(
            lambda item: exception_item_snooze(item=item, actor=request.user, **data),
            refused=status.HTTP_400_BAD_REQUEST,
        )

    @extend_schema(request=s.CorrectionSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def correct(self, request, pk=None):
        data = self._valid(s.CorrectionSerializer)
        line = get_object_or_404(DocumentLine, pk=data["line"], document_id=self.get_object().document_id)
        return self._act(
            lambda item: document_line_correct(
                line=line, field_name=data["field"], value=data["value"], reason=data["reason"], actor=request.user
            ),
            refused=status.HTTP_400_BAD_REQUEST,
        )

    @extend_schema(
        methods=["GET"],
        responses={200: s.CommentSerializer(many=True), 404: s.ErrorSerializer},
        summary="The item's comment thread (latest version of each comment, oldest first)",
        description="Anyone who may see the item reads its comments; outside your entities the item is a 404.",
    )
    @extend_schema(
        methods=["POST"],
        request=s.CommentCreateSerializer,
        responses={201: s.CommentSerializer, **ERRORS},
        summary="Post a comment; @username tells that person if they can see the item",
        description="Analysts, managers, engineers and admins post; auditors read only. An edit is a new comment "
        "with `replaces` (your own, latest version). 400 on an empty body, over 10,000 characters or a NUL byte.",
    )
    # No queue filters or paging here: the thread of one item, whole (a comment is at most 10,000 characters).
    @action(detail=True, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def comments(self, request, pk=None):
        item = self.get_object()  # outside the account's entities: 404
        if request.method == "GET":
            return Response(s.CommentSerializer(comment_thread(item=item), many=True).data)
        data = s.CommentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        replaces = None
        if data.validated_data.get("replaces"):
            replaces = Comment.objects.filter(pk=data.validated_data["replaces"], item=item).first()
            if replaces is None:
                return Response({"detail": "No such comment on this item."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            comment = comment_add(actor=request.user, body=data.validated_data["body"], item=item, replaces=replaces)
        except WorkbenchError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        comment.edited = comment.replaces_id is not None
        return Response(s.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Documents with their lines, crosswalk ids and trace."""

    filterset_class = DocumentFilter

    def get_queryset(self):
        qs = documents_for(self.request.user, Document.objects.select_related("entity").order_by("-id"))
        if self.action == "retrieve":
            qs = qs.prefetch_related("lines", "refs", "events__actor")
        return qs

    def get_serializer_class(self):
        return s.DocumentDetailSerializer if self.action == "retrieve" else s.DocumentSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q",
                str,
                required=True,
                description="Any id in any system: source id or number, ERP number or id, correlation id, "
                "supplier tax id.",
            )
        ],
        responses={200: s.FindResultSerializer, 400: s.ErrorSerializer},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def find(self, request):
        """The documents (in your entities) an id names, each with what matched in which system."""
        result = document_find(request.query_params.get("q", ""), user=request.user)
        if result.error:
            return Response({"detail": result.error}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            s.FindResultSerializer(
                {
                    "query": result.query,
                    "related": result.related,
                    "truncated": result.truncated,
                    "results": [{"document": f.document, "matched": f.reasons} for f in result.found],
                }
            ).data
        )
