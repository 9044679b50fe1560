"""The e-invoice inbox: every PEPPOL/UBL example in the reference set is ingested through the API,
the watched folder and the upload screen; invalid ones become items quoting the schema error."""

from __future__ import annotations

import pytest

from sync.jobs.einvoice_inbox import scan_folder
from tests.factories import master_data
from tests.support.einvoices import CII, FIXTURES, UBL
from workbench.models import Document, ExceptionItem

pytestmark = pytest.mark.django_db
URL = "/api/p2p/einvoices/"


def test_every_ubl_example_becomes_an_invoice_and_every_cii_one_an_exception(analyst_client, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "uploads", None)  # 63 uploads in one go
    master_data()
    assert len(UBL) == 48 and len(CII) == 15
    for path in UBL:
        r = analyst_client.post(URL, path.read_bytes(), content_type="application/xml")
        assert r.status_code in (200, 201), (path.name, r.content[:300])
    for path in CII:
        r = analyst_client.post(URL, path.read_bytes(), content_type="application/xml")
        assert r.status_code == 422, path.name
        assert "not a UBL 2.1 Invoice or CreditNote" in r.json()["message"]
    invoices = Document.objects.filter(kind="supplier_invoice", source_system="einvoice")
    assert invoices.count() == len({p.read_bytes() for p in UBL})
    assert ExceptionItem.objects.filter(code="INVALID_EINVOICE").count() == len({p.read_bytes() for p in CII})
    assert all(d.lines.exists() and len(d.currency) == 3 and d.party_name for d in invoices)
    credit_notes = invoices.filter(name__startswith="Credit note")
    assert credit_notes.count() >= 5 and all(d.total <= 0 for d in credit_notes)


def test_the_same_file_twice_is_one_document(analyst_client):
    body = UBL[0].read_bytes()
    first = analyst_client.post(URL, body, content_type="application/xml")
    again = analyst_client.post(URL, body, content_type="application/xml")
    assert first.status_code == 201 and again.status_code == 200 and again.json()["status"] == "duplicate"
    assert first.json()["document"] == again.json()["document"]


def test_a_schema_error_is_quoted_with_its_line(analyst_client):
    text = (FIXTURES / "bis-billing-3-testfiles" / "Invoice-Min_content_with_VAT.xml").read_text()
    broken = text.replace("<cbc:InvoicedQuantity", "<cbc:Bogus>1</cbc:Bogus><cbc:InvoicedQuantity", 1)
    r = analyst_client.post(URL, broken.encode(), content_type="application/xml")
    assert r.status_code == 422
    item = ExceptionItem.objects.get(pk=r.json()["exception"])
    assert item.code == "INVALID_EINVOICE" and item.kind == "business"
    assert "Bogus" in item.message and "Line " in item.message and item.detail["line"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"%PDF-1.7 binary",
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
        b"<Invoice>not ubl</Invoice>",
        "<á>\u202e</á>".encode(),
    ],
)
def test_hostile_or_broken_files_become_items_never_500s(analyst_client, body):
    r = analyst_client.post(URL, body, content_type="application/xml")
    assert r.status_code in (400, 422), r.content[:300]
    assert b"root:" not in r.content  # /etc/passwd never read


def test_multipart_upload_works_and_a_missing_file_is_a_400(analyst_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = analyst_client.post(URL, {"file": SimpleUploadedFile("inv.xml", UBL[1].read_bytes(), "application/xml")})
    assert r.status_code == 201, r.content
    assert analyst_client.post(URL, {"other": "x"}).status_code == 400


def test_the_watched_folder_takes_valid_and_invalid_files(tmp_path):
    (tmp_path / "good.xml").write_bytes(UBL[2].read_bytes())
    (tmp_path / "bad.xml").write_bytes(CII[0].read_bytes())
    counts = scan_folder(tmp_path)
    assert counts == {"received": 1, "rejected": 1, "duplicates": 0}
    assert (tmp_path / "processed" / "good.xml").exists() and (tmp_path / "rejected" / "bad.xml").exists()
    assert scan_folder(tmp_path) == {"received": 0, "rejected": 0, "duplicates": 0}
