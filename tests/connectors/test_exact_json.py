"""Every connector parses vendor JSON one way (``connectors.http.json_exact``): fractions as exact
Decimals, never floats. Vendor bodies are served raw by a fake server, since a sandbox writes its
numbers through ``float`` and so never sends more digits than a float holds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import MalformedPayload
from connectors.business_central.connector import BusinessCentralConnector
from connectors.coupa.connector import CoupaConnector
from connectors.http import HttpClient, json_exact
from tests.support.fakes import FakeServer

# As JSON text: what a float holds exactly in its shortest repr, and what it does not.
AMOUNTS = ["1234567.8912345", "0.1", "98765432109876.123456789", "1e-7"]
STAMP = "2026-11-20T08:00:00Z"


@pytest.fixture
def vendor():
    server = FakeServer()
    yield server
    server.close()


def test_json_exact_keeps_every_digit_and_refuses_what_is_not_json():
    body = json_exact(b'{"a": 1234567.8912345, "b": 0.1, "c": 98765432109876.123456789, "n": 12345678901234567890}')
    assert body == {
        "a": Decimal("1234567.8912345"),
        "b": Decimal("0.1"),
        "c": Decimal("98765432109876.123456789"),
        "n": 12345678901234567890,
    }
    assert all(isinstance(v, Decimal) for k, v in body.items() if k != "n") and type(body["n"]) is int
    assert json_exact('[{"x": 2.50}]') == [{"x": Decimal("2.50")}]  # str too; trailing zero kept
    for bad in (b'{"value": [', b"<html>oops</html>", b'{"amount": NaN}', b'{"amount": Infinity}', b"\xff\xfe{"):
        with pytest.raises(MalformedPayload, match="not JSON"):
            json_exact(bad, where="GET /x")


def test_the_http_client_parses_bodies_exactly(vendor):
    vendor.token_endpoint("/token")
    vendor.answer("GET", "/api/thing", '{"amount": 98765432109876.123456789, "rate": 0.1}')
    client = HttpClient(vendor.url, token_url=f"{vendor.url}/token", client_id="c", client_secret="s")
    body = client.get_json("/api/thing")
    assert body == {"amount": Decimal("98765432109876.123456789"), "rate": Decimal("0.1")}
    assert all(isinstance(v, Decimal) for v in body.values())


def test_business_central_amounts_arrive_as_exact_decimals(vendor):
    vendor.token_endpoint("/oauth2/v2.0/token")
    vendor.answer("GET", "/v2.0/sandbox/api/v2.0/companies", {"value": [{"id": "c1", "name": "NW-US"}]})
    rows = ", ".join(
        f'{{"id": "b{i}", "period": "2026-11", "costCenterCode": "CC-100", "accountNumber": "6110", '
        f'"amount": {amount}, "lastModifiedDateTime": "{STAMP}"}}'
        for i, amount in enumerate(AMOUNTS)
    )
    vendor.answer(
        "GET", "/v2.0/sandbox/api/northwind/finance/v1.0/companies(c1)/budgetEntries", f'{{"value": [{rows}]}}'
    )
    connector = BusinessCentralConnector({"base_url": vendor.url, "client_id": "c", "client_secret": "s"})
    records = [r for page in connector.read("budgets", None) for r in page.records]
    assert [r["amount"] for r in records] == [Decimal(a) for a in AMOUNTS]
    assert [str(r["amount"]) for r in records] == ["1234567.8912345", "0.1", "98765432109876.123456789", "1E-7"]


def test_coupa_amounts_sent_as_json_numbers_arrive_as_exact_decimals(vendor):
    line = (
        '{{"id": {i}, "line-num": {i}, "description": "x", "quantity": 1, "unit-price": {amount}, '
        '"total": {amount}, "currency": {{"code": "EUR"}}}}'
    )
    lines = ", ".join(line.format(i=i, amount=a) for i, a in enumerate(AMOUNTS, start=1))
    vendor.answer(
        "GET",
        "/api/requisitions",
        f'''[{{"id": 7, "status": "approved", "total": {AMOUNTS[2]},
        "currency": {{"code": "EUR"}}, "requested-by": {{"employee-number": "E1"}}, "legal-entity": "NW-DE",
        "updated-at": "{STAMP}", "requisition-lines": [{lines}]}}]''',
    )
    connector = CoupaConnector({"base_url": vendor.url, "api_key": "k"})
    (page,) = list(connector.read("requisitions", None))
    assert not page.errors, page.errors
    (record,) = page.records
    assert record["total"] == Decimal(AMOUNTS[2]) and str(record["total"]) == AMOUNTS[2]
    assert [ln["amount"] for ln in record["lines"]] == [Decimal(a) for a in AMOUNTS]
    assert [ln["unit_price"] for ln in record["lines"]] == [Decimal(a) for a in AMOUNTS]
