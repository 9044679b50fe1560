"""Exports: the file holds exactly the rows the screen shows the person (filters, scope, order, every
page), opens in a spreadsheet without running anything, and big ones come from a background job."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
import time_machine
from django.test import Client

from tests.conftest import make_person
from tests.factories import master_data
from workbench.exports import csv_cell, xlsx_cell
from workbench.models import Budget, Document, ExceptionItem, Notification, WorkJob
from workbench.money import quantize
from workbench.rules import CODES
from workbench.services import work_jobs
from workbench.services.exception_items import search_text
from workbench.services.p2p_documents import p2p_documents_upsert

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOSTILE = ['=HYPERLINK("http://evil")', "+1+cmd", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR"]


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world():
    """130 items on NW-US (USD) and NW-DE (EUR): several queue pages, assorted codes, statuses, SLAs."""
    entities = [master_data("NW-US", "USD"), master_data("NW-DE", "EUR")]
    codes = ["MISSING_COST_CENTER", "CLOSED_PERIOD", "INVALID_TAX_CODE", "ERP_REJECTED"]
    docs = Document.objects.bulk_create(
        [
            Document(
                source_system="concur", source_id=f"D{i}", number=f"R{i:04d}", name=f"Trip {i}",
                entity=entities[i % 2], entity_code=entities[i % 2].code, party_code=f"E{i % 7}",
                party_name=HOSTILE[i % len(HOSTILE)] if i < 6 else f"Employee {i % 7}",
                currency=entities[i % 2].currency, total=Decimal("100.00") + i,
            )
            for i in range(130)
        ]
    )  # fmt: skip
    ExceptionItem.objects.bulk_create(
        [
            ExceptionItem(
                fingerprint=f"x{d.pk}", code=(code := codes[i % 4]), category=CODES[code].category,
                kind=CODES[code].kind, status=["open", "in_progress", "resolved", "open", "waiting"][i % 5],
                message=HOSTILE[i % len(HOSTILE)] if i < 12 else f"Problem {i}", document=d, entity=d.entity,
                amount_at_risk=d.total + Decimal("0.005"), currency=d.currency, owner_team=CODES[code].owner_team,
                opened_at=NOW - timedelta(hours=i * 3 + 1), sla_due_at=NOW + timedelta(hours=(i * 7919) % 200 - 50),
                correlation_id=uuid.uuid4(), search=search_text(code, "", d),
            )
            for i, d in enumerate(docs)
        ]
    )  # fmt: skip
    return entities


def queue_ids(client, params: dict) -> list[int]:
    """The item ids the queue shows, page after page, in order."""
    ids, page = [], 1
    while True:
        html = client.get("/queue/", {**params, "page": page}).content.decode()
        ids += [int(i) for i in re.findall(r'<tr class="[^"]*" data-item="(\d+)">', html)]
        if f"Page {page} of" not in html or f"Page {page} of {page} " in html:
            return ids
        page += 1


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def xlsx_rows(response) -> list[tuple]:
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    return list(book.worksheets[0].iter_rows(values_only=True))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"entity": "NW-DE"},
        {"status": "open", "sort": "-amount"},
        {"code": "CLOSED_PERIOD", "status": "", "sort": "opened"},
    ],
)
def test_the_csv_of_a_filtered_queue_has_exactly_the_rows_the_queue_shows(client, world, params):
    client.force_login(make_person("ann", "Finance analysts"))
    shown = queue_ids(client, params)
    assert len(shown) > 10
    rows = csv_rows(client.get("/queue/export.csv", params))
    assert rows[0][:4] == ["Item", "Code", "Category", "Status"]
    assert [int(r[0]) for r in rows[1:]] == shown


def test_the_whole_active_queue_spans_pages_and_the_export_holds_every_one(client, world):
    client.force_login(make_person("ann", "Finance analysts"))
    shown = queue_ids(client, {})
    assert len(shown) == ExceptionItem.objects.exclude(status="resolved").count() > 50  # more than one page
    assert len(csv_rows(client.get("/queue/export.csv"))) == len(shown) + 1


def test_an_xlsx_export_opens_with_openpyxl_and_holds_the_same_rows(client, world):
    client.force_login(make_person("ann", "Finance analysts"))
    params = {"entity": "NW-US", "sort": "sla"}
    shown = queue_ids(client, params)
    response = client.get("/queue/export.xlsx", params)
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    rows = xlsx_rows(response)
    header = rows[0]
    assert [r[0] for r in rows[1:]] == shown
    first = dict(zip(header, rows[1], strict=True))
    item = ExceptionItem.objects.get(pk=first["Item"])
    # Money: the amount quantized to the currency's minor units, beside its currency; times in UTC.
    assert (Decimal(str(first["Amount at risk"])), first["Currency"]) == (
        quantize(item.amount_at_risk, "USD"),  # 100.005 -> 100.01: half up, as the screens show it
        "USD",
    )
    assert first["Opened (UTC)"] == item.opened_at.replace(tzinfo=None)
    assert first["Link"].endswith(f"/items/{item.pk}/")


def test_a_person_of_one_entity_never_gets_another_entitys_rows(client, world):
    client.force_login(make_person("dora", "Finance analysts", ["NW-DE"]))
    german = set(
        ExceptionItem.objects.filter(entity__code="NW-DE").exclude(status="resolved").values_list("pk", flat=True)
    )
    for params in [{}, {"entity": "NW-US"}, {"q": "Trip"}]:  # asking for the other entity changes nothing
        rows = csv_rows(client.get("/queue/export.csv", params))
        assert {r[4] for r in rows[1:]} == {"NW-DE"}, params
        assert {int(r[0]) for r in rows[1:]} == german
    documents = csv_rows(client.get("/documents/export.csv"))
    assert {r[6] for r in documents[1:]} == {"NW-DE"} and len(documents) == 66
    assert {r[4] for r in xlsx_rows(client.get("/queue/export.xlsx", {"entity": "NW-US"}))[1:]} == {"NW-DE"}


def test_formula_looking_cells_are_neutralised(client, world):
    client.force_login(make_person("ann", "Finance analysts"))
    rows = csv_rows(client.get("/queue/export.csv", {"status": ""}))
    header = rows[0]
    messages = [r[header.index("Message")] for r in rows[1:]]
    for text in HOSTILE:
        assert "'" + text in messages
    assert not [m for m in messages if m[:1] in "=+-@\t\r"]
    sheet = xlsx_rows(client.get("/queue/export.xlsx", {"status": ""}))
    cells = [r[sheet[0].index("Message")] for r in sheet[1:]]
    assert '\'=HYPERLINK("http://evil")' in cells and not [c for c in cells if c[:1] in "=+-@"]
    # Numbers stay numbers (a negative amount is not text), NUL and XML-illegal characters go.
    assert (csv_cell(Decimal("-12.50")), csv_cell("a\x00b"), xlsx_cell("a\x00\x01b"), xlsx_cell("=1+1")) == (
        "-12.50",
        "ab",
        "ab",
        "'=1+1",
    )


def test_a_big_export_runs_in_the_background_and_only_its_asker_downloads_it(
    client, world, settings, tmp_path, jobs_sent
):
    settings.EXPORT_BACKGROUND_ROWS = 20
    settings.WORK_JOB_DIR = tmp_path
    ann = make_person("ann", "Finance analysts")
    client.force_login(ann)
    params = {"entity": "NW-US"}
    shown = queue_ids(client, params)
    response = client.get("/queue/export.xlsx", params)
    job = WorkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert jobs_sent == [("sync.run_work_job", {"job_id": job.pk})]
    assert (job.kind, job.total, job.requested_by) == ("export", len(shown), ann)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-testid="job-progress" data-status="queued"' in page

    assert work_jobs.work_job_run(job.pk) == "done"
    assert work_jobs.work_job_run(job.pk) == "gone"  # delivered twice: one file, one message
    job.refresh_from_db()
    assert (job.status, job.done) == ("done", len(shown)) and job.file_name.endswith(".xlsx")
    assert Notification.objects.filter(recipient=ann, kind="export").count() == 1
    assert "Download queue-20261120.xlsx" in client.get(f"/jobs/{job.pk}/").content.decode()
    assert [r[0] for r in xlsx_rows(client.get(f"/jobs/{job.pk}/download/"))[1:]] == shown
    assert list(tmp_path.iterdir()) == [tmp_path / f"export-{job.pk}.xlsx"]  # no partial file left behind

    other = Client()
    other.force_login(make_person("bob", "Finance analysts"))
    assert other.get(f"/jobs/{job.pk}/download/").status_code == 404
    assert other.get(f"/jobs/{job.pk}/").status_code == 404


def test_a_big_csv_in_the_background_holds_the_queue_rows(client, world, settings, tmp_path, jobs_sent):
    settings.EXPORT_BACKGROUND_ROWS = 20
    settings.WORK_JOB_DIR = tmp_path
    client.force_login(make_person("ann", "Finance analysts"))
    shown = queue_ids(client, {"sort": "-amount"})
    assert client.get("/queue/export.csv", {"sort": "-amount"}).status_code == 302
    job = WorkJob.objects.get()
    work_jobs.work_job_run(job.pk)
    rows = csv_rows(client.get(f"/jobs/{job.pk}/download/"))
    assert [int(r[0]) for r in rows[1:]] == shown


def test_hostile_filters_give_a_clear_answer_never_a_500(client, world):
    client.force_login(make_person("ann", "Finance analysts"))
    assert client.get("/queue/export.csv", {"q": "x" * 10_000_000}).status_code == 400
    for params in [{"q": "a\x00b"}, {"code": "NOPE"}, {"entity": "'; drop"}, {"sort": "evil"}, {"group": "9" * 40}]:
        assert client.get("/queue/export.csv", params).status_code == 200, params
        assert client.get("/queue/export.xlsx", params).status_code == 200, params
    assert client.get("/documents/export.csv", {"financial_status": "\x00"}).status_code == 200


def test_overrides_budgets_and_accruals_export_what_their_screens_show(client, world):
    client.force_login(make_person("max", "Finance managers"))
    for url in [
        "/audit/overrides/export.csv",
        "/audit/overrides/?format=csv",
        "/p2p/budgets/export.csv",
        "/p2p/accruals/export.csv",
    ]:
        rows = csv_rows(client.get(url))
        assert rows[0], url
    for url in ["/audit/overrides/export.xlsx", "/p2p/budgets/export.xlsx", "/p2p/accruals/export.xlsx"]:
        assert xlsx_rows(client.get(url))[0]
    page = client.get("/queue/").content.decode()
    assert 'href="/queue/export.csv?status=active"' in page and 'data-testid="export-xlsx"' in page


def test_the_accruals_export_holds_the_received_not_invoiced_lines_of_my_entities(client, jobs_sent):
    master_data("NW-US", "USD")
    master_data("NW-DE", "EUR")
    po = {
        "external_id": "bc-PO-7", "number": "PO-7", "entity": "NW-US", "vendor_number": "V100", "currency": "USD",
        "total": "1500.00", "order_date": "2026-11-02",
        "lines": [{"line_no": 1, "description": "=Laptops", "account": "6110", "cost_center": "ENG",
                   "quantity": "3", "unit_cost": "500.00", "amount": "1500.00"}],
    }  # fmt: skip
    p2p_documents_upsert(system="business_central", kind="purchase_order", records=[po])
    receipt = {"external_id": "r1", "po_number": "PO-7", "po_line_no": 1, "quantity": "3", "received_on": "2026-11-10"}
    p2p_documents_upsert(system="coupa", kind="goods_receipt", records=[receipt])
    client.force_login(make_person("max", "Finance managers"))
    rows = csv_rows(client.get("/p2p/accruals/export.csv"))
    line = dict(zip(rows[0], rows[1], strict=True))
    assert len(rows) == 2
    assert (line["Section"], line["Document number"], line["Amount"], line["Currency"], line["Description"]) == (
        "Received, not invoiced", "PO-7", "1500.00", "USD", "'=Laptops",
    )  # fmt: skip
    client.force_login(make_person("dora", "Finance analysts", ["NW-DE"]))
    assert len(csv_rows(client.get("/p2p/accruals/export.csv"))) == 1  # the header only
    assert len(xlsx_rows(client.get("/p2p/accruals/export.xlsx", {"entity": "NW-US"}))) == 1


def test_the_api_streams_the_filtered_items_as_csv_scoped_like_its_list(client, world):
    client.force_login(make_person("dora", "Finance analysts", ["NW-DE"]))
    listed = client.get("/api/exceptions/", {"status": "active", "page_size": 500}).json()
    rows = csv_rows(client.get("/api/exceptions/export/", {"status": "active"}, HTTP_ACCEPT="text/csv"))
    assert {r[4] for r in rows[1:]} == {"NW-DE"} and len(rows) - 1 == listed["count"] > 0
    assert client.get("/api/exceptions/export/", {"code": "NOPE"}).status_code == 400  # as the list answers
    schema = client.get("/api/schema/").content.decode()
    assert "/api/exceptions/export/" in schema and "text/csv" in schema


def test_the_budgets_export_holds_my_entities_budget_lines_with_their_currency(client):
    us, de = master_data("NW-US", "USD"), master_data("NW-DE", "EUR")
    Budget.objects.create(
        entity=us, cost_center="ENG", gl_account="6110", period="2026-11", amount=Decimal("5000"), currency="USD"
    )
    Budget.objects.create(
        entity=de, cost_center="ENG", gl_account="6110", period="2026-11", amount=Decimal("700.5"), currency="EUR"
    )
    client.force_login(make_person("dora", "Finance analysts", ["NW-DE"]))
    rows = csv_rows(client.get("/p2p/budgets/export.csv", {"all": "1"}))
    assert [r[:5] + [r[8]] for r in rows[1:]] == [["NW-DE", "2026-11", "ENG", "6110", "700.50", "EUR"]]
    client.force_login(make_person("max", "Finance managers"))
    sheet = xlsx_rows(client.get("/p2p/budgets/export.xlsx", {"all": "1", "period": "2026-11"}))
    assert sorted((r[0], r[4], r[8]) for r in sheet[1:]) == [
        ("NW-DE", Decimal("700.50"), "EUR"),
        ("NW-US", 5000, "USD"),
    ]
