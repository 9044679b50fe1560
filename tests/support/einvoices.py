"""The PEPPOL / EN 16931 example files (tests/fixtures/peppol, EUPL-1.2 licensed, licence beside them)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "peppol"
UBL = sorted((FIXTURES / "en16931-ubl-examples").glob("*.xml")) + sorted(
    (FIXTURES / "bis-billing-3-testfiles").glob("*.xml")
)
CII = sorted((FIXTURES / "en16931-cii-examples").glob("*.xml"))
