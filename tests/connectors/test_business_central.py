"""The Business Central connector against its sandbox (in-thread HTTP server, no Django, no DB)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
import requests

from connectors.base import (
    CheckResult,
    MalformedPayload,
    Page,
    Rejected,
    TransientError,
    WriteOp,
)
from connectors.business_central import mapping
from connectors.business_central.connector import BusinessCentralConnector
from connectors.business_central.sandbox.seed import PAYMENT_TERMS
from connectors.business_central.sandbox.server import BusinessCentralSandbox
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.world import BLOCKED_ACCOUNTS, GL_ACCOUNTS, TAX_CODES, World, build_world

TODAY = date(2026, 11, 20)
OPEN_DAY = "2026-11-10"  # October and November are open on 2026-11-20
CLOSED_DAY = "2026-09-15"  # everything before the previous month is closed


@dataclass
class Env:
    sandbox: BusinessCentralSandbox
    url: str
    world: World

    def connector(self, **overrides) -> BusinessCentralConnector:
        config = {
            "base_url": self.url,
            "client_id": "workbench",
            "client_secret": "sandbox-secret",
            "environment": "sandbox",
            "page_size": 200,
            "timeout": 5,
            **overrides,
        }
        return BusinessCentralConnector(config)

    def faults(self, **faults) -> None:
        requests.post(f"{self.url}/sandbox/faults", json=faults, timeout=5).raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/sandbox/stats", timeout=5).json()

    def touch(self, **body) -> dict:
        resp = requests.post(f"{self.url}/sandbox/touch", json=body, timeout=5)
        resp.raise_for_status()
        return resp.json()


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=7, today=TODAY, n_employees=40, n_lines=0)


@pytest.fixture
def env(world):
    # A fresh sandbox per test: faults and postings never leak between tests.
    sandbox = BusinessCentralSandbox(data_path=None, seed=7, today=TODAY, n_employees=40)
    server, url = run_in_thread(sandbox)
    yield Env(sandbox, url, world)
    # shutdown() waits for the serve loop's poll; do it off the test's clock.
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


def read_all(connector, stream, cursor=None) -> tuple[list[dict], list, dict | None, int]:
    records, errors, pages = [], [], 0
    last_cursor = cursor
    for page in connector.read(stream, cursor):
        assert isinstance(page, Page)
        pages += 1
        records += page.records
        errors += page.errors
        last_cursor = page.next_cursor
    return records, errors, last_cursor, pages


def active_employee(world: World, entity: str = "NW-US"):
    return next(e for e in world.employees_of(entity) if e.status == "Active")


def report(world: World, number: str, **overrides) -> WriteOp:
    emp = active_employee(world)
    line = {
        "account": "8110",
        "amount": Decimal("120.50"),
        "description": "Taxi - Chicago",
        "cost_center": "SALES",
        "project": "",
        "tax_code": "TAXABLE",
    }
    line.update(overrides.pop("line", {}))
    payload = {
        "entity": "NW-US",
        "vendor_number": emp.code,
        "document_number": number,
        "posting_date": OPEN_DAY,
        "currency": "USD",
        "description": "Trip to Chicago",
        "lines": [
            line,
            {
                "account": "8120",
                "amount": Decimal("30.25"),
                "description": "Meals",
                "cost_center": "SALES",
                "project": "PRJ-US100",
                "tax_code": "EXEMPT",
            },
        ],
    }
    payload.update(overrides)
    return WriteOp("post_expense_report", payload)


# --- check / discover ------------------------------------------------------------------------------


def test_check_ok_and_bad_credentials(env):
    ok = env.connector().check()
    assert isinstance(ok, CheckResult) and ok.ok, ok.message
    assert "NW-US" in ok.message and "3 companies" in ok.message

    bad = env.connector(client_secret="wrong").check()
    assert not bad.ok
    assert "refused the credentials" in bad.message and "401" in bad.message


def test_check_unreachable():
    conn = BusinessCentralConnector(
        {"base_url": "http://127.0.0.1:9", "client_id": "x", "client_secret": "y", "timeout": 1}
    )
    result = conn.check()
    assert not result.ok and "unreachable" in result.message


def test_discover(env):
    specs = {s.name: s for s in env.connector().discover()}
    assert set(specs) == {
        "legal_entities",
        "cost_centers",
        "gl_accounts",
        "tax_codes",
        "accounting_periods",
        "employees",
        "projects",
        "payment_terms",
        "currencies",
        "purchase_invoices",
        "suppliers",
        "purchase_orders",
        "budgets",
        "purchase_credit_memos",
        "gl_entries",
    }
    assert specs["gl_entries"].canonical == "gl_entry"
    assert specs["payment_terms"].canonical == "payment_term" and specs["currencies"].canonical == "currency"
    assert specs["currencies"].cursor_field == "lastModifiedDateTime"
    assert specs["employees"].canonical == "employee" and specs["employees"].cursor_field == "lastModifiedDateTime"
    assert specs["purchase_invoices"].canonical == "erp_document"
    assert all(s.primary_key == "external_id" for s in specs.values())


# --- reading ---------------------------------------------------------------------------------------


def test_full_read_matches_the_world(env, world):
    conn = env.connector(page_size=7)  # small pages: nextLink paging is exercised on every stream
    n = len(world.entities)
    expected = {
        "legal_entities": n,
        "cost_centers": len(world.cost_centers) * n,
        "gl_accounts": (len(GL_ACCOUNTS) + 1) * n,  # + 2120 Accrued Liabilities, the accrual journal's balance
        "tax_codes": sum(len(TAX_CODES[e[3]]) for e in world.entities),
        "accounting_periods": len(world.periods),
        "employees": len(world.employees),
        "projects": sum(len(p) for p in world.projects.values()),
        "purchase_invoices": 0,
    }
    results = {}
    for stream, count in expected.items():
        records, errors, cursor, pages = read_all(conn, stream)
        assert errors == []
        assert len(records) == count, stream
        assert len({r["external_id"] for r in records}) == count, f"{stream}: duplicates across pages"
        if stream not in ("legal_entities", "purchase_invoices"):
            assert set(cursor) == {e[0] for e in world.entities}, stream
        if count / n > 7 and stream != "accounting_periods":  # periods come as one page per company
            assert pages > n, f"{stream}: expected several pages per company"
        results[stream] = records

    entities = {r["code"]: r for r in results["legal_entities"]}
    assert entities["NW-DE"] == {
        "external_id": entities["NW-DE"]["external_id"],
        "code": "NW-DE",
        "name": "Northwind Handels GmbH",
        "currency": "EUR",
    }
    # LEGACY exists (its blocked flag is not part of BC's API); 8990 is a blocked account.
    assert {"LEGACY", "SALES"} <= {r["code"] for r in results["cost_centers"] if r["entity"] == "NW-US"}
    blocked = {r["code"] for r in results["gl_accounts"] if r["blocked"]}
    assert blocked == BLOCKED_ACCOUNTS
    periods = {(r["entity"], r["code"]): r for r in results["accounting_periods"]}
    assert periods[("NW-US", "2026-09")]["closed"] is True and periods[("NW-US", "2026-10")]["closed"] is False
    assert periods[("NW-US", "2026-02")]["end"] == "2026-02-28"
    terminated = {e.code for e in world.employees if e.status == "Terminated"}
    assert terminated and {r["code"] for r in results["employees"] if r["status"] == "terminated"} == terminated
    emp = world.employees[0]
    mapped = next(r for r in results["employees"] if r["code"] == emp.code)
    assert (mapped["entity"], mapped["name"], mapped["email"]) == (emp.entity, emp.name, emp.email)
    assert {r["tax_type"] for r in results["tax_codes"] if r["entity"] == "NW-FR"} == {"VAT"}


def test_incremental_read_returns_only_changed_rows(env):
    conn = env.connector(page_size=5)
    _, _, cursor, _ = read_all(conn, "employees")
    # The cursor is inclusive (ge): resuming returns the newest row(s) already seen, and nothing else.
    boundary, _, same_cursor, _ = read_all(conn, "employees", cursor)
    assert len(boundary) <= 3 and same_cursor == cursor

    touched = env.touch(stream="employees", count=4)["touched"]
    assert len(touched) == 4
    changed, errors, new_cursor, _ = read_all(conn, "employees", cursor)
    assert errors == []
    ids = {r["external_id"] for r in changed}
    assert ids == {t["id"] for t in touched} | {r["external_id"] for r in boundary}
    assert all(r["name"].endswith("(rev 1)") for r in changed if r["external_id"] in {t["id"] for t in touched})
    assert any(new_cursor[k] > cursor[k] for k in cursor)

    # Nothing changed since: only the new boundary comes back, and a new record shows up.
    again, _, _, _ = read_all(conn, "employees", new_cursor)
    assert {r["external_id"] for r in again} <= ids
    added = env.touch(stream="cost_centers", count=0, add=1)["added"]
    ccs, _, _, _ = read_all(conn, "cost_centers", read_all(conn, "cost_centers")[2])
    assert added[0]["id"] in {r["external_id"] for r in ccs} and len(ccs) <= 4


def test_every_page_cursor_is_safe_to_resume_from(env):
    # BC pages by key, not by time: a cursor moved to the newest row of page one would skip older
    # changes still waiting on page two if the sync stopped in between.
    conn = env.connector(page_size=4)
    pages = list(conn.read("employees", None))
    assert len(pages) > 3
    for i, page in enumerate(pages):
        still_to_come = {r["external_id"] for p in pages[i + 1 :] for r in p.records}
        resumed = {r["external_id"] for r in read_all(conn, "employees", page.next_cursor)[0]}
        assert still_to_come <= resumed, f"resuming after page {i} loses records"


def test_bad_records_are_quarantined_not_fatal(env, world):
    target = env.touch(stream="employees", count=1, set={"status": 42})["touched"][0]
    records, errors, cursor, _ = read_all(env.connector(), "employees")
    assert len(records) == len(world.employees) - 1
    assert [e.external_id for e in errors] == [target["id"]]
    assert "status" in errors[0].message and '"status": 42' in errors[0].raw
    assert cursor  # the broken row does not block the cursor


def test_payment_terms_and_currencies_read_in_full_then_incrementally(env, world):
    conn = env.connector(page_size=4)
    terms, errors, term_cursor, pages = read_all(conn, "payment_terms")
    assert errors == [] and pages > len(world.entities)
    assert len(terms) == len(PAYMENT_TERMS) * len(world.entities) == len({t["external_id"] for t in terms})
    by_key = {(t["entity"], t["code"]): t for t in terms}
    assert by_key["NW-DE", "1M(8D)"] == {
        "external_id": by_key["NW-DE", "1M(8D)"]["external_id"],
        "entity": "NW-DE",
        "code": "1M(8D)",
        "name": "1 month / 2% 8 days",
        "due_date_calculation": "1M",
        "discount_date_calculation": "8D",
        "discount_percent": "2",
    }
    assert by_key["NW-US", "CM+10D"]["name"] == "Current month + 10 days"
    # Exact digits, never a float's: the percent is a string the workbench parses as a Decimal.
    assert by_key["NW-FR", "1.5%10N30"]["discount_percent"] == "1.5"
    assert all(isinstance(t["discount_percent"], str) for t in terms)

    currencies, errors, currency_cursor, _ = read_all(conn, "currencies")
    assert errors == [] and set(currency_cursor) == set(term_cursor) == {e[0] for e in world.entities}
    codes = {e[0]: {c["code"] for c in currencies if c["entity"] == e[0]} for e in world.entities}
    # BC's currency table lists foreign currencies: the company's own lives in its G/L setup.
    assert codes["NW-US"] == {"EUR", "GBP", "CHF", "SEK", "DKK", "JPY"}
    assert codes["NW-DE"] == codes["NW-FR"] == {"USD", "GBP", "CHF", "SEK", "DKK", "JPY"}
    yen = next(c for c in currencies if c["entity"] == "NW-US" and c["code"] == "JPY")
    assert (yen["name"], yen["symbol"], yen["decimals"]) == ("Japanese yen", "¥", 0)
    assert {c["decimals"] for c in currencies if c["code"] != "JPY"} == {2}

    # Incremental: only what changed since (plus the inclusive boundary row of each company).
    boundary = {r["external_id"] for r in read_all(conn, "payment_terms", term_cursor)[0]}
    assert len(boundary) <= len(world.entities)
    touched = env.touch(stream="payment_terms", company="NW-DE", count=2)["touched"]
    added = env.touch(stream="currencies", company="NW-FR", count=0, add=1)["added"]
    changed, errors, new_cursor, _ = read_all(conn, "payment_terms", term_cursor)
    assert errors == [] and {r["external_id"] for r in changed} == {t["id"] for t in touched} | boundary
    assert new_cursor["NW-DE"] > term_cursor["NW-DE"] and new_cursor["NW-US"] == term_cursor["NW-US"]
    assert all(r["name"].endswith("(rev 1)") for r in changed if r["external_id"] in {t["id"] for t in touched})
    new_currencies = read_all(conn, "currencies", currency_cursor)[0]
    assert added[0]["id"] in {r["external_id"] for r in new_currencies} and len(new_currencies) <= 4


def test_bad_payment_terms_and_currencies_are_record_errors(env, world):
    bad_term = env.touch(stream="payment_terms", company="NW-US", count=1, set={"discountPercent": "two"})["touched"][0]
    bad_currency = env.touch(stream="currencies", company="NW-DE", count=1, set={"amountDecimalPlaces": -2})["touched"][
        0
    ]
    conn = env.connector()

    terms, errors, cursor, _ = read_all(conn, "payment_terms")
    assert len(terms) == len(PAYMENT_TERMS) * len(world.entities) - 1
    assert [e.external_id for e in errors] == [bad_term["id"]]
    assert "discountPercent" in errors[0].message and '"discountPercent": "two"' in errors[0].raw
    assert cursor["NW-US"]  # the broken row does not hold the cursor back

    currencies, errors, _, _ = read_all(conn, "currencies")
    assert bad_currency["id"] not in {c["external_id"] for c in currencies}
    assert [e.external_id for e in errors] == [bad_currency["id"]] and "amountDecimalPlaces" in errors[0].message


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"discountPercent": "2,5"}, "discountPercent must be a number"),
        ({"discountPercent": 120}, "between 0 and 100"),
        ({"discountPercent": None}, "discountPercent must be a number"),
        ({"code": ""}, "missing code"),
    ],
)
def test_payment_term_mapping_refuses_bad_values(raw, problem):
    good = {
        "id": "x",
        "code": "30 DAYS",
        "displayName": "Net 30 days",
        "dueDateCalculation": "30D",
        "discountPercent": 0,
    }
    assert mapping.payment_term({**good, "discountPercent": 2.5}, "NW-US")["discount_percent"] == "2.5"
    with pytest.raises(mapping.MappingError, match=problem):
        mapping.payment_term({**good, **raw}, "NW-US")


@pytest.mark.parametrize("places", ["-1:-1", -1, "two", "", None, True, "2:"])
def test_currency_mapping_refuses_bad_decimal_places(places):
    good = {"id": "x", "code": "JPY", "displayName": "Japanese yen", "symbol": "¥", "amountDecimalPlaces": "0:0"}
    assert mapping.currency(good, "NW-US")["decimals"] == 0
    assert mapping.currency({**good, "amountDecimalPlaces": "2:5"}, "NW-US")["decimals"] == 5
    with pytest.raises(mapping.MappingError, match="amountDecimalPlaces"):
        mapping.currency({**good, "amountDecimalPlaces": places}, "NW-US")


def test_throttling_raises_transient_with_retry_after(env):
    conn = env.connector()
    env.faults(throttle_rate=1, retry_after=7)
    with pytest.raises(TransientError) as info:
        read_all(conn, "employees")
    assert info.value.retry_after == 7.0


def test_server_error_is_transient(env):
    env.faults(error_rate=1)
    with pytest.raises(TransientError) as info:
        read_all(env.connector(), "gl_accounts")
    assert "500" in str(info.value)


def test_malformed_body_raises_malformed_payload(env):
    env.faults(malformed_rate=1)
    with pytest.raises(MalformedPayload):
        read_all(env.connector(), "projects")


# --- writing ---------------------------------------------------------------------------------------


def test_post_valid_report(env):
    conn = env.connector()
    result = conn.write(report(env.world, "EXP-0001-v1"), idempotency_key="k1")
    assert result.status == "posted"
    assert result.data == {"number": "PPI-108001", "fiscal_year": "2026", "posting_date": OPEN_DAY, "entity": "NW-US"}

    docs, errors, _, _ = read_all(conn, "purchase_invoices")
    assert errors == [] and len(docs) == 1
    doc = docs[0]
    assert doc["external_id"] == result.external_id and doc["number"] == "PPI-108001"
    assert (doc["status"], doc["total"], doc["currency"], doc["vendor_invoice_number"]) == (
        "open",
        Decimal("150.75"),
        "USD",
        "EXP-0001-v1",
    )
    assert doc["paid_at"] is None


def test_same_document_number_posts_once(env):
    conn = env.connector()
    first = conn.write(report(env.world, "EXP-0002-v1"), idempotency_key="a")
    second = env.connector().write(report(env.world, "EXP-0002-v1"), idempotency_key="b")
    assert second.external_id == first.external_id and second.data == first.data
    assert second.message.startswith("Already posted")
    stats = env.stats()
    assert stats["documents"] == {"EXP-0002-v1": 1}
    assert stats["purchaseInvoices.created"] == 1 and stats["purchaseInvoices.posted"] == 1
    assert "purchaseInvoices.rejected" not in stats  # looked up first: no second create was even tried


def test_purchase_invoices_carry_the_fiscal_year_the_posting_reported(env):
    """A posting whose answer was lost is found again by the stream: it must carry the same fiscal
    year as the write result, or the workbench writes an empty one back to the expense platform."""
    conn = env.connector()
    result = conn.write(report(env.world, "EXP-0001-v1"), idempotency_key="k1")

    docs, errors, _, _ = read_all(conn, "purchase_invoices")
    (doc,) = [d for d in docs if d["external_id"] == result.external_id]
    assert errors == [] and doc["fiscal_year"] == result.data["fiscal_year"] == "2026"
    assert doc["posting_date"] == result.data["posting_date"]


def test_parallel_postings_each_get_their_own_invoice_and_number(env):
    # Several workers post at once; a slow ERP makes their requests overlap.
    env.faults(delay_ms=50)
    numbers = [f"EXP-PAR{n:02d}-v1" for n in range(12)]
    results: dict[str, object] = {}

    def post(number: str) -> None:
        results[number] = env.connector().write(report(env.world, number), idempotency_key=number)

    threads = [threading.Thread(target=post, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == numbers
    assert env.stats()["documents"] == {n: 1 for n in numbers}  # none replaced by another
    posted = [r.data["number"] for r in results.values()]
    assert len(set(posted)) == len(numbers), posted
    assert len({r.external_id for r in results.values()}) == len(numbers)


def test_closed_period_is_rejected_with_bc_words(env):
    with pytest.raises(Rejected) as info:
        env.connector().write(report(env.world, "EXP-0003-v1", posting_date=CLOSED_DAY), idempotency_key="c")
    assert info.value.code == "Application_DialogException"
    assert info.value.message == "Posting Date is not within your range of allowed posting dates."
    assert env.stats().get("purchaseInvoices.posted", 0) == 0


def test_blocked_legacy_cost_center_is_rejected(env):
    with pytest.raises(Rejected) as info:
        env.connector().write(report(env.world, "EXP-0004-v1", line={"cost_center": "LEGACY"}), idempotency_key="d")
    assert info.value.code == "Application_DialogException"
    assert info.value.message == "Dimension Value DEPARTMENT - LEGACY is blocked."


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (
            {"line": {"cost_center": "SALE"}},
            "Application_DialogException",
            "Dimension Value DEPARTMENT - SALE does not exist.",
        ),
        (
            {"line": {"tax_code": "VAT16"}},
            "Internal_InvalidTableRelation",
            "The field Tax Group Code of table Purchase Line contains a value (VAT16)",
        ),
        ({"line": {"account": "8990"}}, "Application_FieldValidationException", "Blocked must be equal to 'No'"),
        ({"line": {"cost_center": ""}}, "Application_DialogException", "Select a Dimension Value Code"),
        ({"vendor_number": "E9999"}, "Internal_InvalidTableRelation", "Buy-from Vendor No."),
        ({"entity": "NW-XX"}, "Internal_CompanyNotFound", "NW-XX"),
    ],
)
def test_other_refusals(env, change, code, words):
    with pytest.raises(Rejected) as info:
        env.connector().write(report(env.world, "EXP-0005-v1", **change), idempotency_key="e")
    assert info.value.code == code and words in info.value.message


@pytest.mark.parametrize(
    ("account", "words"),
    [
        ("8100", "Account Type must be equal to 'Posting'  in G/L Account: No.=8100. Current value is 'Heading'."),
        ("2190", "Direct Posting must be equal to 'Yes'  in G/L Account: No.=2190. Current value is 'No'."),
        ("8990", "Blocked must be equal to 'No'  in G/L Account: No.=8990. Current value is 'Yes'."),
    ],
)
def test_an_account_that_takes_no_entries_is_refused_in_bc_words_naming_the_account(env, account, words):
    with pytest.raises(Rejected) as info:
        env.connector().write(report(env.world, "EXP-0009-v1", line={"account": account}), idempotency_key="h")
    assert (info.value.code, info.value.message) == ("Application_FieldValidationException", words)
    assert (info.value.field, info.value.value) == ("account", account)
    assert env.stats().get("purchaseInvoices.posted", 0) == 0


def test_accounts_say_whether_they_take_entries(env):
    records, errors, _, _ = read_all(env.connector(), "gl_accounts")
    assert errors == []
    us = {r["code"]: r for r in records if r["entity"] == "NW-US"}
    assert (us["8100"]["account_type"], us["8100"]["direct_posting"]) == ("Heading", True)
    assert (us["2190"]["account_type"], us["2190"]["direct_posting"]) == ("Posting", False)
    assert (us["8110"]["account_type"], us["8110"]["direct_posting"], us["8110"]["blocked"]) == ("Posting", True, False)
    for entity in ("NW-US", "NW-DE", "NW-FR"):  # every company has one of each on purpose
        mine = [r for r in records if r["entity"] == entity]
        assert any(r["blocked"] for r in mine)
        assert any(r["account_type"] != "Posting" for r in mine)
        assert any(not r["direct_posting"] for r in mine)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"accountType": "Begin_Total"}, ("Begin-Total", True)),
        ({"accountType": "End Total", "directPosting": False}, ("End-Total", False)),
        ({}, ("Posting", True)),  # an older payload without the properties
    ],
)
def test_account_type_is_read_however_bc_spells_it(raw, expected):
    base = {"id": "a", "number": "1000", "displayName": "x", "category": "Assets", "blocked": False}
    rec = mapping.gl_account({**base, **raw}, "NW-US")
    assert (rec["account_type"], rec["direct_posting"]) == expected


@pytest.mark.parametrize("raw", [{"accountType": "Sideways"}, {"accountType": 3}, {"directPosting": "yes"}])
def test_a_malformed_account_type_is_a_mapping_error(raw):
    base = {"id": "a", "number": "1000", "displayName": "x", "category": "Assets", "blocked": False}
    with pytest.raises(mapping.MappingError):
        mapping.gl_account({**base, **raw}, "NW-US")


def test_terminated_employee_is_rejected(env, world):
    leaver = next(e for e in world.employees if e.status == "Terminated")
    op = report(
        world, "EXP-0006-v1", entity=leaver.entity, vendor_number=leaver.code, currency="", line={"tax_code": ""}
    )
    for line in op.payload["lines"]:
        line.update(tax_code="", project="")
    with pytest.raises(Rejected) as info:
        env.connector().write(op, idempotency_key="f")
    assert info.value.message == f"You cannot post because employee {leaver.code} is terminated."


def test_timeout_is_uncertain_and_resend_finds_the_first_attempt(env):
    env.faults(timeout_rate=1, hang_seconds=3, timeout_methods=["POST"])
    with pytest.raises(TransientError) as info:
        env.connector(timeout=1).write(report(env.world, "EXP-0007-v1"), idempotency_key="g")
    assert info.value.uncertain is True
    stats = env.stats()
    assert stats["documents"] == {"EXP-0007-v1": 1} and stats["invoices"] == {"Draft": 1}  # it did arrive

    env.faults(timeout_rate=0)
    result = env.connector().write(report(env.world, "EXP-0007-v1"), idempotency_key="g")
    assert result.status == "posted" and result.data["number"] == "PPI-108001"
    stats = env.stats()
    assert stats["documents"] == {"EXP-0007-v1": 1} and stats["purchaseInvoices.created"] == 1
    assert stats["invoices"] == {"Open": 1}


def test_posted_invoice_becomes_paid_and_is_read_incrementally(env):
    conn = env.connector()
    result = conn.write(report(env.world, "EXP-0008-v1"), idempotency_key="h")
    _, _, cursor, _ = read_all(conn, "purchase_invoices")
    env.sandbox.pay_after = 0  # pay everything posted so far on the next look
    docs, _, new_cursor, _ = read_all(conn, "purchase_invoices", cursor)
    paid = next(d for d in docs if d["external_id"] == result.external_id)
    assert paid["status"] == "paid" and paid["paid_at"] == new_cursor["NW-US"]
    assert new_cursor["NW-US"] > cursor["NW-US"]
