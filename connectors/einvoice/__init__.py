"""E-invoices received as files (PEPPOL BIS Billing 3.0 / EN 16931 in UBL 2.1 syntax).

- ``ubl.py``   safe parsing, XSD validation against the vendored OASIS UBL 2.1 schemas
               (``schemas/ubl-2.1/xsd``) and mapping to the canonical ``supplier_invoice`` record.
"""

from connectors.einvoice.ubl import InvalidEInvoice, parse_einvoice, validate_ubl

__all__ = ["InvalidEInvoice", "parse_einvoice", "validate_ubl"]
