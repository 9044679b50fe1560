"""UBL 2.1 (PEPPOL BIS Billing 3.0 / EN 16931) Invoice and CreditNote: parse safely, validate
against the vendored OASIS XSDs, and map to the canonical ``supplier_invoice`` record.

Pure Python + lxml, no Django. Only the XSD layer is checked here; the PEPPOL/EN 16931 business
rules (Schematron) are not, so a document can pass and still break a BR-xx rule.
"""

from __future__ import annotations

import hashlib
import re
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lxml import etree

MAX_BYTES = 25 * 1024 * 1024
MAX_ERRORS = 20
# What the document's tree may hold, counted in a streaming pass before the tree is built: 24 MB
# holding 2.5 million attributes took a worker from 0.7 to 5.4 GB. An invoice line is 13-20
# elements and 3-5 attributes, so about 10,000 lines fit. Comments and processing instructions
# count as elements; a tree at both limits costs ~150 MB.
MAX_ELEMENTS = 200_000
MAX_ATTRIBUTES = 500_000  # in all, namespace declarations included
MAX_ATTRIBUTES_PER_ELEMENT = 100
MAX_DEPTH = 100
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "ubl-2.1" / "xsd" / "maindoc"
NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
ROOTS = {  # root tag -> (document_type, schema file, line element, quantity element)
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice": (
        "invoice",
        "UBL-Invoice-2.1.xsd",
        "cac:InvoiceLine",
        "cbc:InvoicedQuantity",
    ),
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote": (
        "credit_note",
        "UBL-CreditNote-2.1.xsd",
        "cac:CreditNoteLine",
        "cbc:CreditedQuantity",
    ),
}
# UNTDID 1001 credit note codes allowed by PEPPOL BIS 3 (381 credit note, 396 factored credit
# note, 81/83/532 variants): a supplier may send them as an <Invoice> with this type code.
CREDIT_NOTE_TYPE_CODES = {"381", "396", "81", "83", "532"}
# A DTD has no business in an e-invoice and is the vector for XXE and entity expansion; looked for
# in the raw bytes (UTF-8 and both UTF-16s) so it is refused before libxml2 reads it at all.
_DTD_MARKERS = [m.encode(enc) for m in ("<!DOCTYPE", "<!ENTITY") for enc in ("utf-8", "utf-16-le", "utf-16-be")]
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"-?\d{4,}-\d{2}-\d{2}")

# libxml2 collects every attribute of a start tag before anyone can count them (1.2 million in a
# 10 MB tag cost 270 MB), so a tag crowded with '=' is refused from the raw bytes first. Each
# attribute has one '=' and '<' cannot occur inside a tag, so this over-counts (text '=' between
# two tags counts too) but never under-counts, in UTF-8 and the other ASCII-based encodings.
_CROWDED = 10_000
_ALL_BUT_LT_EQ = bytes(b for b in range(256) if b not in b"<=")  # deleted, leaving "<==<=<<===..."
# Streaming validation stops after this many errors; up to it, they are found again on the tree for
# their line numbers (lxml computes each error's node path, which costs its preceding siblings, so
# 190,000 bad siblings took 200 s).
_LOCATED_ERRORS = 200
# One XSD that holds both roots, compiled per thread: an XMLSchema keeps its error_log on the
# object, so it cannot be shared between threads, and a lock would queue every upload behind one.
_BOTH_ROOTS = (
    '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
    + "".join(
        f'<xsd:import namespace="{tag[1:].split("}")[0]}" schemaLocation="{spec[1]}"/>' for tag, spec in ROOTS.items()
    )
    + "</xsd:schema>"
)
_local = threading.local()


class InvalidEInvoice(Exception):
    """The file is not a usable UBL 2.1 invoice; ``message`` says why in one sentence."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        errors: list[str] | None = None,
        summary: dict | None = None,
        code: str = "invalid",
    ):
        super().__init__(message)
        self.message = message
        self.line = line
        self.errors = errors if errors is not None else [message]
        self.summary = summary or {}  # number, supplier, amount, currency when readable
        # too_large, empty, not_xml, dtd, too_complex, not_ubl, schema, content; the watched folder
        # adds link and not_a_file for what it refuses to open
        self.code = code


def too_large(size: int) -> InvalidEInvoice:
    """The refusal of a file of ``size`` bytes over MAX_BYTES (also said before reading one)."""
    return InvalidEInvoice(
        f"The file is {size / 1024 / 1024:.1f} MB; e-invoices over {MAX_BYTES // 1024 // 1024} MB are not accepted.",
        code="too_large",
    )


def _parser(recover: bool = False) -> etree.XMLParser:
    # huge_tree: attachments are embedded as base64 text (FT_G2G carries a 3.3 MB PDF) and libxml2
    # refuses a text node over 10 MB without it. It also lifts libxml2's other limits, which is
    # why this parser only ever sees a file that the census (below, without huge_tree) has read
    # to its end within our limits.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, recover=recover)


def _recovering_parser() -> etree.XMLParser:
    # Without huge_tree, like the census: a recovering parse stops quietly where libxml2's limits
    # stop it, and this one must stop at the same place as the census that counted for it.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True)


def _schema() -> etree.XMLSchema:
    schema = getattr(_local, "schema", None)
    if schema is None:  # ~0.1 s and ~15 MB, once per thread
        # Trusted local files; imports/includes resolve relative to SCHEMA_DIR, never the network.
        root = etree.fromstring(_BOTH_ROOTS, base_url=f"{SCHEMA_DIR.as_posix()}/")
        schema = _local.schema = etree.XMLSchema(root)
    return schema


def _too_complex(what: str) -> InvalidEInvoice:
    return InvalidEInvoice(f"The file is too complex to check: {what}.", code="too_complex")


class _EnoughErrors(Exception):
    pass


class _Census:
    """An lxml parser target: counts what the document's tree would hold, without building it, and
    stops the parse at the first limit passed. With a schema on the parser it also stops once the
    streaming validation has found more than ``_LOCATED_ERRORS`` errors."""

    def __init__(self):
        self.parser: etree.XMLParser | None = None  # set when the parser validates
        self.elements = self.attributes = self.depth = self._declared = 0

    def start_ns(self, prefix, uri):
        self._declared += 1  # xmlns="..." is an attribute to libxml2's memory too

    def start(self, tag, attrib):
        attributes, self._declared = len(attrib) + self._declared, 0
        self.attributes += attributes
        self.depth += 1
        self._node()
        if attributes > MAX_ATTRIBUTES_PER_ELEMENT:
            raise _too_complex(
                f"an element with {attributes:,} attributes (at most {MAX_ATTRIBUTES_PER_ELEMENT} are accepted)"
            )
        if self.depth > MAX_DEPTH:
            raise _too_complex(f"elements nested more than {MAX_DEPTH} deep (the limit for an e-invoice)")
        if self.attributes > MAX_ATTRIBUTES:
            raise _too_complex(f"more than {MAX_ATTRIBUTES:,} attributes (the limit for an e-invoice)")

    def end(self, tag):
        self.depth -= 1

    def comment(self, text):
        self._node()

    def pi(self, target, data=None):
        self._node()

    def _node(self):
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _too_complex(f"more than {MAX_ELEMENTS:,} elements (the limit for an e-invoice)")
        # error_log is a copy, so looked at now and then (the log grows by at most ~26,000 between)
        if self.parser is not None and self.elements % 256 == 0:
            log = self.parser.error_log
            if len(log) > _LOCATED_ERRORS:
                raise _EnoughErrors(log)

    def close(self):
        return self


def _census(content: bytes, *, schema: etree.XMLSchema | None = None, recover: bool = False) -> etree.XMLParser:
    """Read the whole file without building a tree, validating it as it goes when given a schema.

    Raises InvalidEInvoice(code="too_complex") past a limit, XMLSyntaxError for broken XML and
    _EnoughErrors; returns the parser, whose error_log holds the schema errors.
    """
    census = _Census()
    # No huge_tree: libxml2 keeps its own limits (10 MB for one tag, 256 levels) as a last fence.
    parser = etree.XMLParser(
        target=census, schema=schema, recover=recover, resolve_entities=False, no_network=True, load_dtd=False
    )
    if schema is not None:
        census.parser = parser
    etree.fromstring(content, parser)
    return parser


def _text(node, path: str) -> str:
    found = node.find(path, NS)
    return (found.text or "").strip() if found is not None else ""


def _summary(root) -> dict:
    """What a person can still read from a rejected document (all strings, maybe empty)."""
    try:
        party = "cac:AccountingSupplierParty/cac:Party/"
        return {
            "number": _text(root, "cbc:ID"),
            "supplier": _text(root, party + "cac:PartyLegalEntity/cbc:RegistrationName")
            or _text(root, party + "cac:PartyName/cbc:Name"),
            "amount": _text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount"),
            "currency": _text(root, "cbc:DocumentCurrencyCode"),
        }
    except (ValueError, TypeError, etree.LxmlError):  # a non-element root (recovered junk)
        return {}


def _syntax_error(content: bytes, exc: etree.XMLSyntaxError) -> InvalidEInvoice:
    line = exc.lineno or None
    detail = re.sub(r", line \d+, column \d+$", "", (exc.msg or str(exc)).strip())
    if "Resource limit exceeded" in detail or "Excessive depth" in detail:  # libxml2's own fence
        return _too_complex(f"line {line} passes a limit of the XML parser ({detail})")
    if content.lstrip().startswith(b"%PDF"):
        message, line = "This is a PDF, not a UBL XML e-invoice (send the XML, or upload the PDF as a scan).", None
    elif "amplification" in detail:  # entity expansion in an encoding the byte scan does not cover
        message = f"Line {line}: entity declarations and references are not accepted in e-invoices ({detail})."
    else:
        message = f"Line {line}: not well-formed XML: {detail}."
    summary = {}
    try:  # the recovering parser often still finds the number and supplier of a truncated file
        _census(content, recover=True)  # ...if the tree it builds is within the limits
        root = etree.fromstring(content, _recovering_parser())
        if root is not None and root.tag in ROOTS:
            summary = _summary(root)
    except (InvalidEInvoice, etree.LxmlError, ValueError):
        pass
    return InvalidEInvoice(message, line=line, summary=summary, code="not_xml")


def validate_ubl(content: bytes) -> tuple[etree._ElementTree, str]:
    """Parse ``content`` safely and validate it against the UBL 2.1 XSD of its root element.

    Returns the tree and "invoice" or "credit_note" (from the root; the type code is applied by
    ``parse_einvoice``). Raises ``InvalidEInvoice`` for anything else. Memory and time are bounded
    by the limits above: a streaming pass counts and validates before any tree is built.
    """
    if not isinstance(content, bytes | bytearray | memoryview):
        raise TypeError(f"content must be bytes, not {type(content).__name__}")
    content = bytes(content)
    if len(content) > MAX_BYTES:
        raise too_large(len(content))
    if not content.strip():
        raise InvalidEInvoice("The file is empty.", code="empty")
    if any(marker in content for marker in _DTD_MARKERS):
        raise InvalidEInvoice(
            "The XML declares a DOCTYPE or entities, which e-invoices must not "
            "(refused to protect against XXE and entity expansion).",
            code="dtd",
        )
    if b"=" * (_CROWDED + 1) in content.translate(None, _ALL_BUT_LT_EQ):  # ~30 ms for 25 MB
        raise _too_complex(
            f"a tag with more than {_CROWDED:,} attributes (at most {MAX_ATTRIBUTES_PER_ELEMENT} are accepted)"
        )
    schema = _schema()
    try:
        try:
            log = _census(content, schema=schema).error_log
            enough = len(log) > _LOCATED_ERRORS  # the census looks only every 256 elements
        except _EnoughErrors as stop:
            log, enough = stop.args[0], True
            _census(content)  # the validation stopped early; the count must still reach the end
        except etree.XMLSyntaxError:
            _census(content)  # when validating, lxml words a syntax error as the first schema error
            raise
        root = etree.fromstring(content, _parser())  # a namespace error fails this parse, not the census
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(content, exc) from None
    except (etree.LxmlError, ValueError) as exc:  # e.g. an encoding libxml2 cannot handle
        raise InvalidEInvoice(f"The file could not be read as XML: {exc}.", code="not_xml") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # an encoding the scan missed
        raise InvalidEInvoice("The XML declares a DOCTYPE, which e-invoices must not.", code="dtd")
    if root.tag not in ROOTS:
        hint = " (UN/CEFACT CII is a different syntax)" if "CrossIndustry" in str(root.tag) else ""
        raise InvalidEInvoice(
            f"The document is not a UBL 2.1 Invoice or CreditNote: root element is {root.tag}{hint}.",
            line=root.sourceline,
            code="not_ubl",
        )
    errors = [e for e in log if e.domain == etree.ErrorDomains.SCHEMASV] or (list(log) if enough else [])
    if not errors:
        return tree, ROOTS[root.tag][0]
    if not enough and not schema.validate(tree):  # few enough to find again on the tree, with lines
        located = list(schema.error_log)
        lines = [f"Line {e.line}: {e.message}" for e in located[:MAX_ERRORS]]
        raise InvalidEInvoice(lines[0], line=located[0].line, errors=lines, summary=_summary(root), code="schema")
    messages = [e.message for e in errors[:MAX_ERRORS]]
    more = f" (the first of more than {_LOCATED_ERRORS} schema errors; lines are not given for so many)"
    raise InvalidEInvoice(
        messages[0] + (more if enough else ""), errors=messages, summary=_summary(root), code="schema"
    )


def _amount(node, path: str, what: str, *, required: bool = True) -> Decimal | None:
    text = _text(node, path)
    if not text and not required:
        return None
    try:
        value = Decimal(text)  # xs:decimal text, never via float
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise InvalidEInvoice(f"The {what} is missing or not a number: {text!r}.", code="content")
    return value


def _date(node, path: str, what: str, *, required: bool = False) -> str:
    text = _text(node, path)
    if not text and not required:
        return ""
    if not _DATE.match(text):
        raise InvalidEInvoice(f"The {what} is missing or not a date: {text!r}.", code="content")
    return text[: text.index("-", 1) + 6]  # drop an xs:date timezone ("2018-01-31+01:00")


def _party(party) -> tuple[str, str]:
    """(name, tax id) of a supplier or customer cac:Party."""
    if party is None:
        return "", ""
    name = _text(party, "cac:PartyLegalEntity/cbc:RegistrationName") or _text(party, "cac:PartyName/cbc:Name")
    # Prefer the VAT number: Swedish invoices put "Godkänd för F-skatt" (F-tax approval text,
    # TaxScheme "TAX") in a second PartyTaxScheme, sometimes before the VAT one.
    schemes = party.findall("cac:PartyTaxScheme", NS)
    vat = [s for s in schemes if _text(s, "cac:TaxScheme/cbc:ID").upper() == "VAT"]
    tax_id = (
        (_text(vat[0], "cbc:CompanyID") if vat else "")
        or _text(party, "cac:PartyLegalEntity/cbc:CompanyID")
        or _text(party, "cbc:EndpointID")
    )
    return name, tax_id


def _iban(root) -> str:
    # Several PaymentMeans are common (bankgiro, plusgiro, IBAN): prefer one that looks like an
    # IBAN, else the first account; spaces removed ("NL57 RABO 0107307510").
    accounts = [
        re.sub(r"\s+", "", e.text or "") for e in root.findall("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", NS)
    ]
    accounts = [a for a in accounts if a]
    ibans = [a for a in accounts if re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}", a.upper())]
    return (ibans or accounts or [""])[0]


def _line(node, position: int, qty_path: str, po_number: str) -> dict:
    line_id = _text(node, "cbc:ID")
    where = f"line {line_id or position}"
    quantity_el = node.find(qty_path, NS)
    price = _amount(node, "cac:Price/cbc:PriceAmount", f"price of {where}", required=False)
    base = _amount(node, "cac:Price/cbc:BaseQuantity", f"base quantity of {where}", required=False)
    if price is not None and base:  # price per BaseQuantity units (e.g. per 365 days, per 12 months)
        price = price / base
    return {
        "external_id": line_id,
        "line_no": position,
        "description": _text(node, "cac:Item/cbc:Name") or _text(node, "cac:Item/cbc:Description"),
        "quantity": _amount(node, qty_path, f"quantity of {where}", required=False),
        "uom": (quantity_el.get("unitCode") or "").strip() if quantity_el is not None else "",
        "unit_price": price,
        "amount": _amount(node, "cbc:LineExtensionAmount", f"amount of {where}"),
        "po_number": po_number,
        "po_line_no": _text(node, "cac:OrderLineReference/cbc:LineID"),
        "tax_code": _text(node, "cac:Item/cac:ClassifiedTaxCategory/cbc:ID"),
        "tax_percent": _amount(
            node, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", f"VAT rate of {where}", required=False
        ),
    }


def _payment_terms(root) -> dict:
    """The terms as written (cac:PaymentTerms may repeat: the first note, the first discount).

    Values pass as text: the workbench refuses an implausible one (year 9999, 500 %) field by field,
    so one bad term never loses the invoice."""
    terms = root.findall("cac:PaymentTerms", NS)
    note = next((t for t in (_text(pt, "cbc:Note") for pt in terms) if t), "")
    discounted = next((pt for pt in terms if _text(pt, "cbc:SettlementDiscountPercent")), None)
    if discounted is None:
        return {"payment_terms": note}
    period = "cac:SettlementPeriod/"
    duration = discounted.find(period + "cbc:DurationMeasure", NS)
    days = _text(discounted, period + "cbc:DurationMeasure")
    unit = (duration.get("unitCode") or "DAY").strip().upper() if duration is not None else ""
    return {
        "payment_terms": note,
        "discount_percent": _text(discounted, "cbc:SettlementDiscountPercent"),
        "discount_due_date": _text(discounted, period + "cbc:EndDate")[:10],
        # UN/ECE rec 20: DAY (also "D"); a duration in other units is not counted.
        "discount_days": days.split(".")[0] if unit in ("DAY", "D") and days else "",
    }


def _tax_total(root, currency: str, net_total: Decimal) -> Decimal:
    # With a TaxCurrencyCode there are two TaxTotals (e.g. USD and SEK): take the document's.
    for amount in root.findall("cac:TaxTotal/cbc:TaxAmount", NS):
        if (amount.get("currencyID") or "").strip() == currency:
            return _amount(amount, ".", "VAT total (TaxTotal/TaxAmount)")
    inclusive = _amount(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount", "total with VAT", required=False)
    return inclusive - net_total if inclusive is not None else Decimal("0")


def _map(root, doc_type: str, content: bytes, filename: str) -> dict:
    kind = ROOTS[root.tag]
    if _text(root, "cbc:InvoiceTypeCode") in CREDIT_NOTE_TYPE_CODES:
        doc_type = "credit_note"
    number = _text(root, "cbc:ID")
    if not number:
        raise InvalidEInvoice("The document has no invoice number (cbc:ID).", code="content")
    currency = _text(root, "cbc:DocumentCurrencyCode")
    if not _CURRENCY.fullmatch(currency):
        raise InvalidEInvoice(
            f"The document currency {currency!r} is not an ISO 4217 code (3 capital letters).", code="content"
        )
    supplier_name, supplier_tax_id = _party(root.find("cac:AccountingSupplierParty/cac:Party", NS))
    buyer_name, buyer_tax_id = _party(root.find("cac:AccountingCustomerParty/cac:Party", NS))
    po_number = _text(root, "cac:OrderReference/cbc:ID")
    totals = "cac:LegalMonetaryTotal/cbc:"
    net_total = _amount(root, totals + "TaxExclusiveAmount", "total without VAT", required=False)
    if net_total is None:
        net_total = _amount(root, totals + "LineExtensionAmount", "sum of line amounts")
    lines = [_line(node, i, kind[3], po_number) for i, node in enumerate(root.findall(kind[2], NS), start=1)]
    if not lines:
        raise InvalidEInvoice("The document has no invoice lines.", code="content")
    return {
        "external_id": "einvoice:" + hashlib.sha256(content).hexdigest()[:24],  # same file, same id
        "channel": "einvoice",
        "number": number,
        "document_type": doc_type,
        "supplier_code": "",
        "supplier_name": supplier_name,
        "supplier_tax_id": supplier_tax_id,
        "supplier_iban": _iban(root),
        "entity": "",
        "buyer_tax_id": buyer_tax_id,
        "buyer_name": buyer_name,
        "buyer_reference": _text(root, "cbc:BuyerReference"),
        "currency": currency,
        "invoice_date": _date(root, "cbc:IssueDate", "issue date", required=True),
        # Invoice has cbc:DueDate; CreditNote has none, PEPPOL puts it in PaymentMeans.
        "due_date": _date(root, "cbc:DueDate", "due date")
        or _date(root, "cac:PaymentMeans/cbc:PaymentDueDate", "due date")
        or _date(root, "cac:PaymentTerms/cbc:PaymentDueDate", "due date"),
        **_payment_terms(root),
        "po_number": po_number,
        "contract_ref": _text(root, "cac:ContractDocumentReference/cbc:ID"),
        # A credit note names the invoice it corrects (PEPPOL BT-25, "Preceding invoice reference").
        "corrects_number": _text(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"),
        "total": _amount(root, totals + "PayableAmount", "amount due"),  # after prepayments and rounding
        "net_total": net_total,
        "tax_total": _tax_total(root, currency, net_total),
        "lines": lines,
        "source_file": filename,
    }


def parse_einvoice(content: bytes, *, filename: str = "") -> dict:
    """A UBL 2.1 e-invoice file -> canonical ``supplier_invoice`` record, or ``InvalidEInvoice``."""
    tree, doc_type = validate_ubl(content)
    root = tree.getroot()
    try:
        return _map(root, doc_type, bytes(content), filename)
    except InvalidEInvoice as exc:
        exc.summary = _summary(root)
        raise
    except ArithmeticError as exc:  # e.g. a price / base quantity that overflows the context
        raise InvalidEInvoice(
            f"An amount in the document cannot be computed: {exc!r}.", summary=_summary(root), code="content"
        ) from None
