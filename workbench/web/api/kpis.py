"""`GET /api/kpis/`: the dashboard's numbers as JSON, from the same selector and the same filters."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from workbench.selectors.kpis import kpis_get
from workbench.web.kpi_filters import KpiFilterForm

from .serializers import ErrorSerializer


def _rate(**kwargs):
    return serializers.DecimalField(max_digits=12, decimal_places=1, coerce_to_string=False, allow_null=True, **kwargs)


class WindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    weeks = serializers.ListField(child=serializers.DateField(), help_text="The Mondays the weekly points start on.")


class FiltersSerializer(serializers.Serializer):
    entity = serializers.CharField()
    source_system = serializers.CharField()
    code = serializers.CharField()


class RateWeekSerializer(serializers.Serializer):
    week = serializers.DateField()
    documents = serializers.IntegerField()
    items = serializers.IntegerField()
    per_100 = _rate()


class ExceptionRateSerializer(serializers.Serializer):
    documents = serializers.IntegerField()
    items = serializers.IntegerField()
    per_100 = _rate(help_text="Items raised on documents per 100 documents that arrived.")
    trend = RateWeekSerializer(many=True)


class FtrWeekSerializer(serializers.Serializer):
    week = serializers.DateField()
    posted = serializers.IntegerField()
    clean = serializers.IntegerField()
    percent = _rate()


class FirstTimeRightSerializer(serializers.Serializer):
    posted = serializers.IntegerField()
    clean = serializers.IntegerField(help_text="Posted documents that never had an exception item.")
    percent = _rate()
    trend = FtrWeekSerializer(many=True)


class LagWeekSerializer(serializers.Serializer):
    week = serializers.DateField()
    posted = serializers.IntegerField()
    p50_hours = _rate()
    p90_hours = _rate()


class PostingLagSerializer(serializers.Serializer):
    posted = serializers.IntegerField()
    p50_hours = _rate()
    p90_hours = _rate()
    trend = LagWeekSerializer(many=True)


class ResolveByCodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    resolved = serializers.IntegerField()
    mean_hours = _rate()


class ResolveByTeamSerializer(serializers.Serializer):
    team = serializers.CharField()
    resolved = serializers.IntegerField()
    mean_hours = _rate()


class ResolveWeekSerializer(serializers.Serializer):
    week = serializers.DateField()
    resolved = serializers.IntegerField()
    mean_hours = _rate()


class TimeToResolveSerializer(serializers.Serializer):
    resolved = serializers.IntegerField()
    mean_hours = _rate()
    by_code = ResolveByCodeSerializer(many=True)
    by_team = ResolveByTeamSerializer(many=True)
    trend = ResolveWeekSerializer(many=True)


class BucketSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The queue's `age` value for this bucket.")
    label = serializers.CharField()
    count = serializers.IntegerField()


class BacklogWeekSerializer(serializers.Serializer):
    week = serializers.DateField()
    at = serializers.DateTimeField()
    count = serializers.IntegerField()


class BacklogSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    buckets = BucketSerializer(many=True)
    trend = BacklogWeekSerializer(many=True)


class MoneyWeekSerializer(serializers.Serializer):
    week = serializers.DateField()
    at = serializers.DateTimeField()
    amount = serializers.DecimalField(max_digits=24, decimal_places=4)


class MoneyRowSerializer(serializers.Serializer):
    entity = serializers.CharField()
    entity_name = serializers.CharField()
    currency = serializers.CharField()
    amount = serializers.DecimalField(max_digits=24, decimal_places=4, help_text="In `currency`; never converted.")
    items = serializers.IntegerField()
    trend = MoneyWeekSerializer(many=True)


class MoneyAtRiskSerializer(serializers.Serializer):
    rows = MoneyRowSerializer(many=True)


class KpisSerializer(serializers.Serializer):
    window = WindowSerializer()
    filters = FiltersSerializer()
    exception_rate = ExceptionRateSerializer()
    first_time_right = FirstTimeRightSerializer()
    posting_lag = PostingLagSerializer()
    time_to_resolve = TimeToResolveSerializer()
    backlog = BacklogSerializer()
    money_at_risk = MoneyAtRiskSerializer()


@extend_schema(
    parameters=[
        OpenApiParameter("entity", str, description="Legal entity code (one of yours)."),
        OpenApiParameter("source", str, description="Source system of the documents (concur, coupa...)."),
        OpenApiParameter("code", str, description="Exception code (CLOSED_PERIOD...)."),
    ],
    responses={200: KpisSerializer, 400: ErrorSerializer},
)
@api_view(["GET"])
def kpis_view(request):
    """The KPI dashboard's numbers for the last 12 weeks, for your entities; definitions are on `/dashboard/`."""
    form = KpiFilterForm(request.query_params, user=request.user)
    if not form.is_valid():
        return Response({"detail": form.error_text()}, status=status.HTTP_400_BAD_REQUEST)
    return Response(KpisSerializer(kpis_get(user=request.user, filters=form.filters())).data)
