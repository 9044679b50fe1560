"""REST API: the same selectors, filters and services as the screens."""

from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from workbench.errors import WorkbenchError
from workbench.export_sources import queue_source
from workbench.exports import CONTENT_TYPES, csv_chunks, file_name
from workbench.filters import DocumentFilter, ExceptionItemFilter
from workbench.models import Document, DocumentLine, ExceptionItem
from workbench.selectors import exception_item_list
from workbench.services import item_actions as items_service
from workbench.services.documents import document_line_correct
from workbench.services.overrides import override_request
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
