"""Money helpers: Decimal amounts with an ISO 4217 currency, quantized at the edges."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units that differ from 2 (the rest use 2).
MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def parse_amount(value) -> Decimal:
    """Parse a vendor amount exactly; floats go through str() so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = str(value)
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"not an amount: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


def fmt(amount: Decimal | None, currency: str = "") -> str:
    if amount is None:
        return ""
    q = quantize(amount, currency or "USD")
    return f"{q:,.{minor_units(currency or 'USD')}f} {currency}".strip()
