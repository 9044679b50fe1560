"""The e-invoice inbox: UBL 2.1 / PEPPOL BIS Billing 3.0 documents from an upload, the API or a watched folder.

Every channel calls `einvoice_receive`. A valid document becomes a supplier invoice (matched like
any other); one that fails the UBL 2.1 schema (or is not UBL at all) becomes an INVALID_EINVOICE
item that quotes the schema's error and its line. The same file twice is one document.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from connectors.einvoice import InvalidEInvoice, parse_einvoice
from connectors.einvoice.ubl import MAX_BYTES, too_large
from workbench.models import Document, ExceptionItem
from workbench.services.exception_items import exception_item_raise
from workbench.services.invoices import credit_note_apply
from workbench.services.p2p_documents import check_p2p_record, p2p_documents_upsert
from workbench.services.postings import postings_enqueue
from workbench.services.trace import document_event_add
from workbench.services.validation import documents_validate

log = logging.getLogger(__name__)
SYSTEM = "einvoice"


@dataclass
class Received:
    document: Document | None = None
    item: ExceptionItem | None = None
    duplicate_file: bool = False

    @property
    def ok(self) -> bool:
        return self.document is not None


def einvoice_receive(*, content: bytes, filename: str, channel: str, actor=None) -> Received:
    """Store one e-invoice; never raises for a bad document (it becomes an exception item)."""
    name = Path(filename or "upload.xml").name[:120]
    try:
        record = parse_einvoice(content, filename=name)
        problem = check_p2p_record(Document.Kind.SUPPLIER_INVOICE, record)
        if problem:  # schema-valid, but not something the ledger can hold (e.g. an amount of 10^26)
            raise InvalidEInvoice(
                f"{problem}.",
                line=None,
                errors=[problem],
                summary={
                    "number": str(record.get("number") or ""),
                    "supplier": str(record.get("supplier_name") or ""),
                    "currency": str(record.get("currency") or ""),
                },
            )
    except InvalidEInvoice as exc:
        digest = hashlib.sha256(content).hexdigest()[:24]
        return Received(item=_invalid_item(exc, name=name, channel=channel, key=digest, sha256=digest))
    with transaction.atomic():
        existed = Document.objects.filter(source_system=SYSTEM, source_id=record["external_id"]).first()
        if existed is not None:
            return Received(document=existed, duplicate_file=True)
        result = p2p_documents_upsert(system=SYSTEM, kind=Document.Kind.SUPPLIER_INVOICE, records=[record])
        doc = result.touched[0]
        document_event_add(
            document=doc,
            system=SYSTEM,
            action="received_file",
            actor=actor,
            message=f"E-invoice {name} received by {channel}",
        )
        if doc.total < 0:
            credit_note_apply(credit_note=doc)
        clean = documents_validate(documents=[doc])
        postings_enqueue([d for d in clean if d.financial_status == Document.FinancialStatus.NOT_POSTED])
    return Received(document=doc)


def _invalid_item(exc: InvalidEInvoice, *, name: str, channel: str, key: str, sha256: str) -> ExceptionItem:
    summary = {k: str(v) for k, v in (exc.summary or {}).items() if v}
    what = " ".join(x for x in (summary.get("number"), summary.get("supplier")) if x)
    return exception_item_raise(
        code="INVALID_EINVOICE",
        fp=f"INVALID_EINVOICE:{key}",
        message=f"{name} ({channel}){' — ' + what if what else ''} is not a valid UBL 2.1 invoice: {exc.message}",
        detail={
            "file": name,
            "channel": channel,
            "line": exc.line,
            "errors": exc.errors[:20],
            "summary": summary,
            "sha256": sha256,
        },
        # One group per sender, so that one resend fixes one group; else one per channel.
        root_cause=summary.get("supplier", "")[:60] or channel,
        currency=(summary.get("currency") or "")[:3].upper() if len(summary.get("currency") or "") == 3 else "",
        search_extra=f"{name} {what}",
    )


def _refusal(info: os.stat_result) -> InvalidEInvoice | None:
    if stat.S_ISLNK(info.st_mode):
        return InvalidEInvoice(
            "The file is a symbolic link; the inbox takes only regular files and never follows links.", code="link"
        )
    if not stat.S_ISREG(info.st_mode):
        return InvalidEInvoice("This is not a regular file (a folder, device or pipe).", code="not_a_file")
    if info.st_size > MAX_BYTES:
        return too_large(info.st_size)
    return None


def read_inbox_file(path: Path) -> bytes:
    """The bytes of a file in the watched folder; InvalidEInvoice, without reading a byte, for a
    symbolic link (to /etc/passwd, say), anything but a regular file, or a file over MAX_BYTES."""
    if refusal := _refusal(os.lstat(path)):
        raise refusal
    try:  # O_NOFOLLOW: a link swapped in since the lstat is refused too; O_NONBLOCK: a pipe cannot hang us
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refusal(os.lstat(path)) or exc from None
        raise
    with open(fd, "rb") as file:
        if refusal := _refusal(os.fstat(fd)):  # what was opened, if swapped since the lstat
            raise refusal
        content = file.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:  # it grew while read
        raise too_large(len(content))
    return content


def inbox_folder() -> Path:
    return Path(os.getenv("EINVOICE_INBOX") or Path(settings.VAR_DIR) / "einvoice-inbox")


def scan_folder(folder: Path | None = None) -> dict[str, int]:
    """Take every *.xml in the folder: valid ones move to processed/, invalid ones to rejected/."""
    folder = folder or inbox_folder()
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"received": 0, "rejected": 0, "duplicates": 0}
    channel = "watched folder"
    for path in sorted(folder.glob("*.xml")) + sorted(folder.glob("*.XML")):
        try:
            content = read_inbox_file(path)
        except InvalidEInvoice as exc:  # refused unread: the item says why, the entry goes to rejected/
            key = hashlib.sha256(f"{channel}:{path.name}:{exc.code}".encode()).hexdigest()[:24]
            _invalid_item(exc, name=path.name[:120], channel=channel, key=key, sha256="")
            got = Received()
        except OSError as exc:
            log.warning("e-invoice inbox: cannot read %s: %s", path, exc)
            continue
        else:
            got = einvoice_receive(content=content, filename=path.name, channel=channel)
        target = folder / ("processed" if got.ok else "rejected")
        target.mkdir(exist_ok=True)
        path.replace(target / path.name)  # a rename: a link moves as a link, its target untouched
        counts["received" if got.ok and not got.duplicate_file else "duplicates" if got.ok else "rejected"] += 1
    return counts
