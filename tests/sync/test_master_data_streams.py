"""Payment terms and currencies come in with the rest of the ERP's master data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.business_central.sandbox.seed import CURRENCIES, PAYMENT_TERMS
from sync.models import SyncCursor
from tests.support.pipeline import run
from workbench.models import Currency, LegalEntity, PaymentTerm
from workbench.services.masterdata import masterdata_upsert

pytestmark = pytest.mark.django_db


def test_it_stores_payment_terms_and_currencies_of_every_entity(conns):
    erp, _ = conns

    sync = run(erp, "master_data")

    assert sync.status == "succeeded", sync.message
    entities = LegalEntity.objects.count()
    assert PaymentTerm.objects.count() == len(PAYMENT_TERMS) * entities == 21
    skonto = PaymentTerm.objects.get(entity__code="NW-DE", code="1M(8D)")
    assert (skonto.name, skonto.due_date_calculation, skonto.discount_percent) == (
        "1 month / 2% 8 days",
        "1M",
        Decimal("2"),
    )
    assert PaymentTerm.objects.get(entity__code="NW-US", code="1.5%10N30").discount_percent == Decimal("1.5")
    assert skonto.erp_id
    # Foreign currencies only: each entity's own currency is on the entity.
    for entity in LegalEntity.objects.all():
        codes = set(entity.currencies.values_list("code", flat=True))
        assert codes == {c[0] for c in CURRENCIES} - {entity.currency}
    yen = Currency.objects.get(entity__code="NW-FR", code="JPY")
    assert (yen.name, yen.symbol, yen.decimals) == ("Japanese yen", "¥", 0)
    assert set(SyncCursor.objects.filter(connection=erp).values_list("stream", flat=True)) >= {
        "payment_terms",
        "currencies",
    }


def test_a_second_sync_changes_nothing(conns):
    erp, _ = conns
    assert run(erp, "master_data").status == "succeeded"
    before = list(PaymentTerm.objects.order_by("pk").values("pk", "entity", "code", "discount_percent"))

    again = run(erp, "master_data")

    assert again.status == "succeeded", again.message
    assert list(PaymentTerm.objects.order_by("pk").values("pk", "entity", "code", "discount_percent")) == before
    assert Currency.objects.count() == 18


def test_a_bad_percent_or_decimals_is_an_error_not_a_crash(conns):
    erp, _ = conns
    assert run(erp, "master_data").status == "succeeded"
    base = {"entity": "NW-US", "name": "x", "due_date_calculation": "30D"}

    stored, errors = masterdata_upsert(
        stream="payment_terms",
        records=[
            {**base, "code": "GOOD", "discount_percent": "3.12345", "external_id": "g"},
            {**base, "code": "BAD", "discount_percent": "three", "external_id": "b"},
            {**base, "code": "HUGE", "discount_percent": "250", "external_id": "h"},
        ],
    )
    assert stored == 1 and len(errors) == 2 and "three" in errors[0] and "250" in errors[1]
    # Stored to the column's four places, rounding half up.
    assert PaymentTerm.objects.get(entity__code="NW-US", code="GOOD").discount_percent == Decimal("3.1235")
    assert not PaymentTerm.objects.filter(code__in=["BAD", "HUGE"]).exists()

    stored, errors = masterdata_upsert(
        stream="currencies",
        records=[
            {"entity": "NW-US", "code": "XAU", "name": "Gold", "symbol": "", "decimals": 9, "external_id": "x"},
            {
                "entity": "NW-US",
                "code": "BHD",
                "name": "Bahraini dinar",
                "symbol": "BD",
                "decimals": "3",
                "external_id": "y",
            },
        ],
    )
    assert stored == 1 and len(errors) == 1 and "XAU" in errors[0]
    assert Currency.objects.get(entity__code="NW-US", code="BHD").decimals == 3
