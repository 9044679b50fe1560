"""Find a document by any id it has in any system (the search box in the nav).

Every lookup is an exact match on an indexed column (migration 0029_find), tried in the few
spellings people paste ids in (as typed, upper and lower case), so a search costs a handful of
index probes however many documents there are. Typed text is never a LIKE pattern: `%` and `_`
are just characters. Only documents in the person's legal entities are looked at, so what lies
outside them is neither shown nor counted.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from django.db.models import Q

from workbench.duplicates import normalize_invoice_number
from workbench.models import Document, Supplier
from workbench.roles import in_scope
from workbench.selectors.suppliers import system_label
from workbench.supplier_match import normalize_tax_id

MAX_QUERY = 200  # longer than any id any of the systems hands out
LIMIT = 200  # candidates per kind of id: beyond that, narrowing the search helps more than a longer list
SUPPLIER_KINDS = [Document.Kind.PURCHASE_ORDER, Document.Kind.GOODS_RECEIPT, Document.Kind.SUPPLIER_INVOICE]
REF_KINDS = {
    "source_doc": "id",
    "fis_doc": "document id",
    "report": "report id",
    "erp_invoice": "invoice id",
    "erp_number": "document number",
}
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
KIND_LABELS = dict(Document.Kind.choices)


@dataclass
class Found:
    document: Document
    reasons: list[str] = field(default_factory=list)


@dataclass
class FindResult:
    query: str
    error: str = ""
    found: list[Found] = field(default_factory=list)
    # True when no document has this id itself and the list holds the ones that refer to it (a PO's invoices).
    related: bool = False
    truncated: bool = False

    @property
    def single(self) -> Document | None:
        return self.found[0].document if len(self.found) == 1 and not self.related else None


def query_problem(query: str) -> str:
    """Why a typed text cannot be an id ("" when it can be looked up)."""
    if len(query) > MAX_QUERY:
        return f"That is {len(query):,} characters long; no id in any system is longer than {MAX_QUERY}."
    if any(not ch.isprintable() for ch in query):
        return "That contains control characters (a NUL byte, a tab...) that no id has. Paste the id alone."
    return ""


def document_find(query: str, *, user, limit: int = LIMIT) -> FindResult:
    """The documents (in the person's entities) an id names, each with what matched in which system."""
    query = (query or "").strip()
    result = FindResult(query=query[:MAX_QUERY])
    if not query:
        return result
    result.error = query_problem(query)
    if result.error:
        return result
    docs = in_scope(Document.objects.all(), user)
    spellings = sorted({query, query.upper(), query.lower()})
    hits: dict[int, list[str]] = {}

    def add(rows, reason) -> None:
        rows = list(rows[: limit + 1])
        result.truncated |= len(rows) > limit
        for row in rows[:limit]:
            pk, *rest = row
            text = reason(*rest)
            if text not in hits.setdefault(pk, []):
                hits[pk].append(text)

    add(
        docs.filter(source_id__in=spellings).values_list("pk", "source_system"),
        lambda system: f"{system_label(system)} id",
    )
    add(
        docs.filter(refs__external_id__in=spellings).values_list("pk", "refs__system", "refs__kind"),
        lambda system, kind: f"{system_label(system)} {REF_KINDS.get(kind, kind.replace('_', ' '))}",
    )
    add(
        docs.filter(number__in=spellings).values_list("pk", "kind"),
        lambda kind: f"{KIND_LABELS.get(kind, kind)} number",
    )
    add(docs.filter(erp_document_number__in=spellings).values_list("pk"), lambda: "ERP document number")
    for column, words in (
        ("erp_number", "{} document number"),
        ("erp_id", "{} document id"),
        ("reference", "number sent to {}"),
    ):
        add(
            docs.filter(**{f"erp_postings__{column}__in": spellings}).values_list(
                "pk", "erp_postings__connection__name"
            ),
            lambda name, words=words: words.format(name),
        )
    correlation = _uuid(query)
    if correlation is not None:
        add(docs.filter(correlation_id=correlation).values_list("pk"), lambda: "correlation id")
    _add_supplier_documents(docs, query, add)
    if not hits:
        # Nothing has this id itself: the documents that point at it (a PO's receipts and invoices),
        # and invoices whose number is written differently ("INV-0042" for "inv 42").
        add(
            docs.filter(kind__in=[Document.Kind.GOODS_RECEIPT, Document.Kind.SUPPLIER_INVOICE], po_number__in=spellings)
            .values_list("pk", "kind"),
            lambda kind: f"{KIND_LABELS.get(kind, kind)} for purchase order {query}",
        )  # fmt: skip
        key = normalize_invoice_number(query)[:60]
        if key:
            add(
                docs.filter(kind=Document.Kind.SUPPLIER_INVOICE, number_key=key).values_list("pk", "number"),
                lambda number: f"invoice number {number} (written differently)",
            )
        result.related = bool(hits)
    by_pk = docs.select_related("entity").in_bulk(list(hits))
    result.found = [Found(by_pk[pk], reasons) for pk, reasons in hits.items() if pk in by_pk]
    result.found.sort(key=lambda f: -f.document.pk)
    return result


def _uuid(query: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(query)
    except ValueError:
        return None


def _tax_forms(query: str) -> tuple[str, set[str]]:
    """A tax id's canonical form and the spellings a system may keep it in ("" when it is not one)."""
    canonical, _valid = normalize_tax_id(query)
    # A tax id has digits and some length: "ACME" or "42" are names and numbers, not tax ids.
    if len(canonical) < 6 or sum(ch.isdigit() for ch in canonical) < 5:
        return "", set()
    prefix = canonical[:2] if canonical[:2].isalpha() else ""
    national = canonical[3:] if canonical.startswith("CHE") else canonical[len(prefix) :]
    raw = re.sub(r"\s", "", query).upper()
    forms = {canonical, raw, _NOT_ALNUM.sub("", raw), national, query}
    if prefix == "US" and len(national) == 9:
        forms.add(f"{national[:2]}-{national[2:]}")
    return canonical, {f for f in forms if f}


def _add_supplier_documents(docs, query: str, add) -> None:
    """A supplier's tax id, however it was typed, finds that supplier's documents."""
    canonical, forms = _tax_forms(query)
    if not canonical:
        return
    suppliers = [
        s
        for s in Supplier.objects.filter(tax_id__in=forms).only("entity_id", "code", "name", "tax_id")
        if normalize_tax_id(s.tax_id)[0] == canonical or s.tax_id.upper() in forms
    ]
    match = Q(party_tax_id__in=forms)
    for s in suppliers[:LIMIT]:
        match |= Q(entity_id=s.entity_id, party_code=s.code)
    names = {(s.entity_id, s.code): s.name for s in suppliers}
    add(
        docs.filter(match, kind__in=SUPPLIER_KINDS).values_list("pk", "entity_id", "party_code", "party_name"),
        lambda entity_id, code, name: f"supplier {names.get((entity_id, code)) or name or code} (tax id {canonical})",
    )
