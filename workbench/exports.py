"""CSV and XLSX from an export source (`export_sources.py`), with flat memory.

Cells are made safe for spreadsheets: text that starts like a formula (= + - @, tab, CR) gets a
leading apostrophe, so Excel or LibreOffice shows it instead of running it; NUL is dropped (and in
XLSX every control character XML cannot hold). Numbers stay numbers; money is the exact Decimal
beside its currency column. Times are UTC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from workbench.export_sources import ExportSource

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FORMATS = tuple(CONTENT_TYPES)
FLUSH_ROWS = 500  # CSV rows per chunk sent: fewer, larger writes to the socket
PROGRESS_ROWS = 2000


def safe_text(value: str) -> str:
    value = value.replace("\x00", "")
    return "'" + value if value.startswith(FORMULA_START) else value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def csv_cell(value) -> str | int:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | Decimal):
        return value if isinstance(value, int) else str(value)
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return safe_text(str(value))


def xlsx_cell(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or isinstance(value, int | Decimal | date):
        return _utc(value) if isinstance(value, datetime) else value
    return ILLEGAL_CHARACTERS_RE.sub("", safe_text(str(value)))[:32767]  # a cell holds at most 32,767 characters


def csv_chunks(source: ExportSource, progress: Callable[[int], None] | None = None) -> Iterator[str]:
    """The export as CSV text, a few hundred rows per chunk (a UTF-8 BOM first, so Excel reads accents)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(source.columns)
    n = 0
    for row in source.rows():
        writer.writerow([csv_cell(v) for v in row])
        n += 1
        if n % FLUSH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if progress and n % PROGRESS_ROWS == 0:
                progress(n)
    yield buffer.getvalue()
    if progress:
        progress(n)


def csv_write(source: ExportSource, path: Path, progress: Callable[[int], None] | None = None) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        for chunk in csv_chunks(source, progress):
            f.write(chunk)


def xlsx_write(source: ExportSource, path: Path, progress: Callable[[int], None] | None = None) -> int:
    """Write-only workbook: rows go to a temporary file as they come, never all held in memory."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=source.title[:31].replace("/", "-") or "Export")
    sheet.append(source.columns)
    n = 0
    for row in source.rows():
        sheet.append([xlsx_cell(v) for v in row])
        n += 1
        if progress and n % PROGRESS_ROWS == 0:
            progress(n)
    book.save(path)
    if progress:
        progress(n)
    return n


def file_name(source: ExportSource, fmt: str, today: date) -> str:
    return f"{source.name}-{today:%Y%m%d}.{fmt}"
