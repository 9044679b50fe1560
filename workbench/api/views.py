"""REST API: the same selectors, filters and services as the screens."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from workbench.errors import WorkbenchError
from workbench.filters import DocumentFilter, ExceptionItemFilter
from workbench.models import Document, DocumentLine
from workbench.selectors import exception_item_list
from workbench.services import exception_items as items_service
from workbench.services.documents import document_line_correct

from . import serializers as s

ERRORS = {400: s.ErrorSerializer, 403: s.ErrorSerializer, 404: s.ErrorSerializer, 409: s.ErrorSerializer}


def _error(exc) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class ExceptionItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Exception items. Filters: code, category, status (or `active`), entity (code), assignee (username, `me`, `none`), age, q."""

    filterset_class = ExceptionItemFilter

    def get_queryset(self):
        return exception_item_list()

    def get_serializer_class(self):
        return s.ExceptionItemDetailSerializer if self.action == "retrieve" else s.ExceptionItemSerializer

    @extend_schema(request=s.AssignSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        item = self.get_object()
        data = s.AssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["assignee"]
        user = request.user if name == "me" else (get_user_model().objects.filter(username=name).first() if name else None)
        if name and user is None:
            return Response({"detail": f"No user named {name!r}."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            items_service.exception_item_assign(item=item, assignee=user, actor=request.user)
        except WorkbenchError as exc:
            return _error(exc)
        return Response(s.ExceptionItemDetailSerializer(self.get_object()).data)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def override(self, request, pk=None):
        item = self.get_object()
        data = s.ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            items_service.exception_item_override(item=item, reason=data.validated_data["reason"], actor=request.user)
        except WorkbenchError as exc:
            return _error(exc)
        return Response(s.ExceptionItemDetailSerializer(self.get_object()).data)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="send-back")
    def send_back(self, request, pk=None):
        item = self.get_object()
        data = s.ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            items_service.exception_item_send_back(item=item, reason=data.validated_data["reason"], actor=request.user)
        except WorkbenchError as exc:
            return _error(exc)
        return Response(s.ExceptionItemDetailSerializer(self.get_object()).data)

    @extend_schema(request=None, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        item = self.get_object()
        try:
            items_service.exception_item_retry(item=item, actor=request.user)
        except WorkbenchError as exc:
            return _error(exc)
        return Response(s.ExceptionItemDetailSerializer(self.get_object()).data)

    @extend_schema(request=s.CorrectionSerializer, responses={200: s.ExceptionItemDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def correct(self, request, pk=None):
        item = self.get_object()
        data = s.CorrectionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        line = get_object_or_404(DocumentLine, pk=data.validated_data["line"], document_id=item.document_id)
        try:
            document_line_correct(line=line, field_name=data.validated_data["field"], value=data.validated_data["value"],
                                  reason=data.validated_data["reason"], actor=request.user)
        except WorkbenchError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(s.ExceptionItemDetailSerializer(self.get_object()).data)


class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Documents with their lines, crosswalk ids and trace."""

    filterset_class = DocumentFilter

    def get_queryset(self):
        qs = Document.objects.select_related("entity").order_by("-id")
        if self.action == "retrieve":
            qs = qs.prefetch_related("lines", "refs", "events__actor")
        return qs

    def get_serializer_class(self):
        return s.DocumentDetailSerializer if self.action == "retrieve" else s.DocumentSerializer
