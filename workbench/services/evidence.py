"""Evidence files on an override or a fix: checked by content, stored by digest, read within scope.

The type is read from the file's first bytes (PDF, PNG, JPEG, GIF, WebP, or an RFC 5322 e-mail),
never from its name or the browser's claim; the file is stored under EVIDENCE_DIR named by its
SHA-256, so a hostile name cannot choose a path, and the same file twice is stored once.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import filetype
from django.conf import settings

from workbench.errors import WorkbenchError
from workbench.models import Evidence, ExceptionEvent, ExceptionItem, OverrideRequest

MAX_BYTES = 10 * 1024 * 1024
IMAGE_OR_PDF = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"}
# An e-mail (.eml) starts with header fields; these are the ones every mail client writes early.
_MAIL_HEADER = re.compile(rb"^(Return-Path|Received|From|To|Subject|Date|Message-ID|MIME-Version|Delivered-To):", re.I)


class EvidenceRefused(WorkbenchError):
    pass


def sniff(head: bytes) -> str:
    """The content type these bytes really are, or "" if not one we keep."""
    kind = filetype.guess(head)
    if kind is not None and kind.mime in IMAGE_OR_PDF:
        return kind.mime
    first_lines = head[:4096].splitlines()[:5]
    if first_lines and all(b"\x00" not in ln for ln in first_lines) and _MAIL_HEADER.match(first_lines[0]):
        return "message/rfc822"
    return ""


def _clean_name(name: str) -> str:
    name = Path(name.replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*\x00')
    return name[:200] or "evidence"


def evidence_add(*, item: ExceptionItem, upload, actor, override: OverrideRequest | None = None) -> Evidence:
    """Keep one uploaded file (a Django UploadedFile) as evidence on the item."""
    if upload.size > MAX_BYTES:
        raise EvidenceRefused(f"Evidence files up to {MAX_BYTES // 1024 // 1024} MB; this one is larger.")
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise EvidenceRefused(f"Evidence files up to {MAX_BYTES // 1024 // 1024} MB; this one is larger.")
    if not data:
        raise EvidenceRefused("The file is empty.")
    content_type = sniff(data[:8192])
    if not content_type:
        raise EvidenceRefused("Evidence must be a PDF, an image (PNG, JPEG, GIF, WebP) or an e-mail (.eml).")
    digest = hashlib.sha256(data).hexdigest()
    rel = Path(digest[:2]) / digest
    path = Path(settings.EVIDENCE_DIR) / rel
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    evidence = Evidence.objects.create(
        item=item,
        override=override,
        name=_clean_name(upload.name or ""),
        content_type=content_type,
        size=len(data),
        sha256=digest,
        path=str(rel),
        uploaded_by=actor,
    )
    ExceptionEvent.objects.create(
        item=item,
        action="evidence_added",
        from_status=item.status,
        to_status=item.status,
        actor=actor,
        reason=f"{evidence.name} ({content_type}, {len(data):,} bytes, sha256 {digest[:12]}…)",
        correlation_id=item.correlation_id,
    )
    return evidence


def evidence_path(evidence: Evidence) -> Path:
    return Path(settings.EVIDENCE_DIR) / evidence.path
