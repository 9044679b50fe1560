"""UBL 2.1 / PEPPOL BIS Billing 3.0 e-invoices: parse, XSD-validate, map (pure Python, no DB)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from connectors.einvoice import InvalidEInvoice, parse_einvoice, validate_ubl
from connectors.einvoice.ubl import NS, _parser

PEPPOL = Path(__file__).resolve().parent.parent / "fixtures" / "peppol"
UBL_FILES = sorted((PEPPOL / "en16931-ubl-examples").glob("*.xml")) + sorted(
    (PEPPOL / "bis-billing-3-testfiles").glob("*.xml")
)
CII_FILES = sorted((PEPPOL / "en16931-cii-examples").glob("*.xml"))
BIS = PEPPOL / "bis-billing-3-testfiles"
MIN_VAT = (BIS / "Invoice-Min_content_with_VAT.xml").read_bytes()
MAX = (BIS / "Invoice-Max_content.xml").read_bytes()


def _ids(paths):
    return [p.name for p in paths]


def _invalid(content: bytes, **kwargs) -> InvalidEInvoice:
    with pytest.raises(InvalidEInvoice) as info:
        parse_einvoice(content, **kwargs)
    return info.value


def _line_of(content: bytes, needle: bytes) -> int:
    return content[: content.index(needle)].count(b"\n") + 1


def test_fixture_sets_are_complete():
    assert (len(UBL_FILES), len(CII_FILES)) == (48, 15)


@pytest.mark.parametrize("path", UBL_FILES, ids=_ids(UBL_FILES))
def test_every_ubl_example_parses_and_adds_up(path):
    content = path.read_bytes()
    record = parse_einvoice(content, filename=path.name)
    root = etree.fromstring(content, _parser())

    assert record["number"] and record["channel"] == "einvoice" and record["source_file"] == path.name
    assert len(record["currency"]) == 3 and record["currency"].isupper()
    assert record["external_id"].startswith("einvoice:") and len(record["external_id"]) == len("einvoice:") + 24
    assert len(record["invoice_date"]) == 10 and record["invoice_date"][4] == "-"
    assert record["lines"] and [line["line_no"] for line in record["lines"]] == list(range(1, len(record["lines"]) + 1))
    for key in ("total", "net_total", "tax_total"):
        assert isinstance(record[key], Decimal)
    for line in record["lines"]:
        assert isinstance(line["amount"], Decimal) and line["external_id"] and line["description"]
        assert line["po_number"] == record["po_number"]
        assert line["tax_percent"] is None or isinstance(line["tax_percent"], Decimal)
    expected_type = "credit_note" if root.tag.endswith("}CreditNote") else "invoice"
    assert record["document_type"] == expected_type

    # Lines add up to the header: sum(lines) - document allowances + document charges = net total.
    def total(name):
        return Decimal(root.findtext(f"cac:LegalMonetaryTotal/cbc:{name}", "0", NS))

    lines_sum = sum(line["amount"] for line in record["lines"])
    assert lines_sum == total("LineExtensionAmount")
    assert lines_sum - total("AllowanceTotalAmount") + total("ChargeTotalAmount") == record["net_total"]
    if root.find("cac:AllowanceCharge", NS) is None:
        assert lines_sum == record["net_total"]


def test_min_content_with_vat_maps_every_field():
    record = parse_einvoice(MIN_VAT, filename="min.xml")
    line = record.pop("lines")[0]
    assert record == {
        "external_id": record["external_id"],
        "channel": "einvoice",
        "number": "2018-112",
        "document_type": "invoice",
        "supplier_code": "",
        "supplier_name": "Säljbolaget AB",
        "supplier_tax_id": "SE123451234501",
        "supplier_iban": "",
        "entity": "",
        "buyer_tax_id": "9876543210",  # no VAT number or company id: the PEPPOL endpoint id
        "buyer_name": "Centrala Inköps Handelsbolag",
        "buyer_reference": "ACE22",
        "currency": "SEK",
        "invoice_date": "2018-07-31",
        "due_date": "",
        "payment_terms": "As per contract clasuse X.123",  # sic, the sample's cac:PaymentTerms/cbc:Note
        "po_number": "",
        "contract_ref": "",
        "corrects_number": "",
        "total": Decimal("500"),
        "net_total": Decimal("400"),
        "tax_total": Decimal("100"),
        "source_file": "min.xml",
    }
    assert line == {
        "external_id": "1",
        "line_no": 1,
        "description": "Service fee",
        "quantity": Decimal("1"),
        "uom": "MON",
        "unit_price": Decimal("400"),
        "amount": Decimal("400"),
        "po_number": "",
        "po_line_no": "",
        "tax_code": "S",
        "tax_percent": Decimal("25"),
    }


def test_same_file_same_id_and_other_file_other_id():
    assert parse_einvoice(MIN_VAT)["external_id"] == parse_einvoice(bytes(MIN_VAT))["external_id"]
    assert parse_einvoice(MIN_VAT)["external_id"] != parse_einvoice(MIN_VAT + b"\n")["external_id"]


def test_known_quirks_of_the_examples():
    def parse(folder, name):
        return parse_einvoice((PEPPOL / folder / name).read_bytes())

    # Swedish "Godkänd för F-skatt" sits in a PartyTaxScheme (scheme TAX) before the VAT number.
    assert parse("bis-billing-3-testfiles", "BIS_Billing_30-Elhandel.xml")["supplier_tax_id"] == "SE556677889901"
    # Two TaxTotals (document currency USD, tax currency SEK): the USD one.
    assert parse("bis-billing-3-testfiles", "BIS_Billing_30-Valutor_i_faktura.xml")["tax_total"] == Decimal("23000")
    # Price per BaseQuantity 365 (days) -> unit price per day.
    elnat = parse("bis-billing-3-testfiles", "BIS_Billing_30-Elnat.xml")["lines"][0]
    assert elnat["uom"] == "DAY" and abs(elnat["unit_price"] * elnat["quantity"] - elnat["amount"]) < Decimal("0.01")
    # Several payment accounts: the IBAN-looking one, spaces removed.
    assert parse("en16931-ubl-examples", "guide-example1.xml")["supplier_iban"] == "NL57RABO0107307510"
    # Italian split payment: VAT is "prepaid", the amount due is the net amount.
    italian = parse("en16931-ubl-examples", "FT_G2G_TD01_con_Allegato_Bonifico_e_Split_Payment.xml")
    assert (italian["total"], italian["net_total"], italian["tax_total"]) == (
        Decimal("1246.00"),
        Decimal("1246.00"),
        Decimal("274.12"),
    )
    # A credit given as an Invoice with negative amounts stays an invoice (its amounts say credit).
    negative = parse("bis-billing-3-testfiles", "BIS_Billing_30-Kreditering_med_negativ_faktura.xml")
    assert negative["document_type"] == "invoice" and negative["total"] < 0
    # Order line references come through.
    assert [line["po_line_no"] for line in parse("en16931-ubl-examples", "guide-example2.xml")["lines"]][:3] == [
        "1",
        "5",
        "3",
    ]


def test_a_credit_note_names_the_invoice_it_corrects():
    record = parse_einvoice((BIS / "BIS_Billing_30-Kreditering_med_kreditnota.xml").read_bytes())
    assert (record["document_type"], record["corrects_number"]) == ("credit_note", "2018133")


def test_invoice_with_type_code_381_is_a_credit_note():
    content = MIN_VAT.replace(b"<cbc:InvoiceTypeCode>380<", b"<cbc:InvoiceTypeCode>381<")
    assert parse_einvoice(content)["document_type"] == "credit_note"


@pytest.mark.parametrize("path", CII_FILES, ids=_ids(CII_FILES))
def test_cii_is_not_ubl(path):
    error = _invalid(path.read_bytes())
    assert "not a UBL 2.1 Invoice or CreditNote" in error.message and "CrossIndustryInvoice" in error.message
    assert error.code == "not_ubl" and error.line and error.line > 1


def test_other_xml_is_not_ubl():
    error = _invalid(b'<?xml version="1.0"?>\n<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>')
    assert error.message == (
        "The document is not a UBL 2.1 Invoice or CreditNote: root element is "
        "{urn:oasis:names:specification:ubl:schema:xsd:Order-2}Order."
    )
    assert error.line == 2


def test_schema_error_quotes_the_message_and_its_line():
    content = MIN_VAT.replace(b'unitCode="MON">1<', b'unitCode="MON">abc<', 1)
    error = _invalid(content)
    line = _line_of(content, b">abc<")
    assert error.line == line == 94
    assert error.message == (
        f"Line {line}: Element '{{{NS['cbc']}}}InvoicedQuantity': 'abc' is not a valid value "
        "of the atomic type 'xs:decimal'."
    )
    assert error.errors[0] == error.message and error.code == "schema"
    assert error.summary == {"number": "2018-112", "supplier": "Säljbolaget AB", "amount": "500", "currency": "SEK"}


def test_unknown_element():
    content = MIN_VAT.replace(b"<cbc:BuyerReference>", b"<cbc:Colour>red</cbc:Colour><cbc:BuyerReference>", 1)
    error = _invalid(content)
    assert error.line == _line_of(content, b"<cbc:Colour>") == 29
    assert "Colour': This element is not expected. Expected is one of" in error.message
    # libxml2 stops checking an element's children after a content-model error (here: the root),
    # so the bad price further down is not reported as well.
    error = _invalid(content.replace(b">400</cbc:PriceAmount>", b">four hundred</cbc:PriceAmount>", 1))
    assert len(error.errors) == 1


def test_all_value_errors_are_listed_and_capped():
    content = MIN_VAT.replace(b"<cbc:IssueDate>2018-07-31<", b"<cbc:IssueDate>yesterday<", 1)
    content = content.replace(b'unitCode="MON">1<', b'unitCode="MON">abc<', 1)
    error = _invalid(content)
    assert [e.split(":")[0] for e in error.errors] == ["Line 25", "Line 94"] and error.line == 25
    assert "'yesterday' is not a valid value of the atomic type 'xs:date'" in error.message
    start, end = content.index(b"<cac:InvoiceLine>"), content.index(b"</cac:InvoiceLine>") + len(b"</cac:InvoiceLine>")
    many = content[:end] + content[start:end] * 30 + content[end:]  # 31 bad quantities
    assert len(_invalid(many).errors) == 20


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"<cbc:DocumentCurrencyCode>SEK<", b"<cbc:DocumentCurrencyCode>sek<", "'sek' is not an ISO 4217 code"),
        (b"<cbc:DocumentCurrencyCode>SEK</cbc:DocumentCurrencyCode>", b"", "'' is not an ISO 4217 code"),
    ],
)
def test_valid_by_schema_but_unusable(old, new, words):
    content = MIN_VAT.replace(old, new, 1)
    tree, kind = validate_ubl(content)  # the XSD accepts it...
    assert kind == "invoice"
    error = _invalid(content)  # ...the mapping does not
    assert words in error.message and error.code == "content" and error.summary["number"] == "2018-112"


def test_credit_note_root_is_validated_with_its_own_schema():
    content = (BIS / "CreditNote-Min_content_with_VAT.xml").read_bytes()
    assert validate_ubl(content)[1] == "credit_note"
    bad = content.replace(b"<cbc:CreditedQuantity", b"<cbc:InvoicedQuantity", 1).replace(
        b"</cbc:CreditedQuantity>", b"</cbc:InvoicedQuantity>", 1
    )
    assert "InvoicedQuantity" in _invalid(bad).message


# --- hostile and broken input -------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"><cbc:ID>&xxe;</cbc:ID></Invoice>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b"]><lolz>&lol9;</lolz>"
)


@pytest.mark.parametrize(
    "content", [XXE, XXE.decode().encode("utf-16"), LAUGHS], ids=["xxe", "xxe-utf16", "billion-laughs"]
)
def test_dtds_are_refused_without_reading_anything(content):
    started = time.monotonic()
    error = _invalid(content)
    assert error.code == "dtd" and "DOCTYPE" in error.message
    assert "root:" not in repr(vars(error)) and time.monotonic() - started < 1


def test_the_parser_itself_never_resolves_external_entities():
    # Second line of defence, should a DOCTYPE get past the byte scan (an exotic encoding).
    root = etree.fromstring(XXE, _parser())
    assert b"root:" not in etree.tostring(root)


@pytest.mark.parametrize(
    ("content", "words", "line"),
    [
        (b"", "The file is empty.", None),
        (b"  \n\t", "The file is empty.", None),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "This is a PDF, not a UBL XML e-invoice", None),
        (b"\x00\x01\x02binary\xff", "not well-formed XML", 1),
        (b"hello, world", "Line 1: not well-formed XML: Start tag expected", 1),
        (b'<?xml version="1.0" encoding="klingon"?><a/>', "Unsupported encoding", 1),
    ],
)
def test_broken_input_gets_a_clear_message(content, words, line):
    error = _invalid(content)
    assert words in error.message and error.line == line


def test_truncated_file_reports_the_line_and_what_could_be_read():
    content = MIN_VAT[: MIN_VAT.index(b"<cac:InvoiceLine>")]
    error = _invalid(content)
    assert (
        error.code == "not_xml" and error.line and error.line > 80 and error.message.startswith(f"Line {error.line}: ")
    )
    assert error.summary["number"] == "2018-112" and error.summary["amount"] == "500"


def test_size_limit():
    started = time.monotonic()
    error = _invalid(b"<" + b"A" * (30 * 1024 * 1024))
    assert error.code == "too_large" and "30.0 MB" in error.message and "25 MB" in error.message
    assert time.monotonic() - started < 2


def test_not_bytes_is_a_programming_error():
    with pytest.raises(TypeError):
        parse_einvoice(MIN_VAT.decode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_only_ever_raise_invalid_einvoice(content):
    with pytest.raises(InvalidEInvoice):
        parse_einvoice(content)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(MIN_VAT)), st.integers(0, 40), st.binary(max_size=20))
def test_mangled_invoices_give_a_record_or_invalid_einvoice(start, length, junk):
    content = MIN_VAT[:start] + junk + MIN_VAT[start + length :]
    try:
        record = parse_einvoice(content)
    except InvalidEInvoice as error:
        assert error.message and isinstance(error.errors, list) and isinstance(error.summary, dict)
    else:
        assert record["number"] and record["lines"]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"InvoicedQuantity", b"PriceAmount", b"BaseQuantity", b"Percent", b"IssueDate", b"PayableAmount"]),
    st.text(alphabet="0123456789.-+eE ", max_size=12),
)
def test_any_number_text_gives_a_record_or_invalid_einvoice(element, value):
    head, rest = MAX.split(b"<cbc:" + element, 1)
    attrs, tail = rest.split(b">", 1)
    content = (
        head
        + b"<cbc:"
        + element
        + attrs
        + b">"
        + value.encode()
        + b"</cbc:"
        + element
        + tail.split(b"</cbc:" + element, 1)[1]
    )
    try:
        parse_einvoice(content)
    except InvalidEInvoice:
        pass


# --- size and concurrency ------------------------------------------------------------------------


def test_large_embedded_attachment_validates():
    path = PEPPOL / "en16931-ubl-examples" / "FT_G2G_TD01_con_Allegato_Bonifico_e_Split_Payment.xml"
    content = path.read_bytes()
    assert len(content) > 3_000_000
    started = time.monotonic()
    record = parse_einvoice(content)
    assert record["number"] == "1316/85" and time.monotonic() - started < 5


def test_concurrent_validation_keeps_errors_apart():
    bad = MIN_VAT.replace(b'unitCode="MON">1<', b'unitCode="MON">abc<', 1)

    def run(i):
        try:
            return parse_einvoice(MIN_VAT if i % 2 else bad)["number"]
        except InvalidEInvoice as error:
            return error.message

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(64)))
    assert results[1::2] == ["2018-112"] * 32
    assert all("'abc' is not a valid value" in r for r in results[::2])
