"""Nightly master-data reconciliation: every ERP record against our copy, drift reported.

The incremental master-data pull (sync/pull.py) sees what changed with a newer
``lastModifiedDateTime``. It cannot see deletions, nor changes made without a timestamp bump (an
import, a table edit, a restore). Once a night this reads every master-data stream in full
(cursor ``None``), page by page, and compares it with the ledger by natural key, field by field on
the fields the sync copies (``workbench.services.masterdata``), normalised the way the sync
normalises them, so that a value that round-trips unchanged is never drift.

Memory stays bounded at 100,000+ records: per stream the ledger side is a dict of key -> tuple of
compared values (``values_list``, no model instances), the ERP side streams page by page, and every
key met is marked seen (its values freed; re-reads after a retry are recognised). What is left
unseen at the end was deleted in the ERP. Drift rows are written per page.

Not repaired here. The ERP is the system of record, but drift usually means something happened
there that a person should look at (a bad import, a restore) before it spreads, and a deletion
applied blindly would cascade or orphan documents that name the code. Each stream's drift becomes
one RECONCILIATION_DRIFT item (workbench/services/reconciliation_items.py) whose fixes a person
takes: pull the stream again, or accept the ERP's values (audited). The item resolves itself when a
later run finds the stream clean. Posted documents and the nightly proof follow the master data
(sync/reconcile_postings.py); drift rows and proof lines are kept for the retention an admin sets.

A master-data pull running at the same time can make a record look drifted for the moment between
our two reads; before a stream's drift is final it is checked again against the ledger as it is
then, and drift the pull has fixed meanwhile is dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import reduce
from operator import or_
from typing import Any
from urllib.parse import unquote

from django.db.models import Count, F, Q

from connectors.base import Page
from sync.health import connector_for
from sync.models import DriftRecord, ProofLine, ReconciliationRun
from sync.reconcile_postings import reconcile_postings
from sync.runs import Skipped, read_with_retries, renew, run_recorded
from workbench import jobs, streams
from workbench.models import Budget, Connection, LegalEntity
from workbench.money import parse_amount
from workbench.services import reconciliation_items as drift_work
from workbench.services.ownership import OBJECT_OF_STREAM, Guard
from workbench.streams import ORDER as MASTER_DATA_STREAMS

log = logging.getLogger(__name__)

JOB = "reconcile"  # its lease is the SyncCursor "lease:reconcile" of the connection
LEASE_SECONDS = 3600  # renewed at every stream: a 100k-record run must not lose it half-way
CHUNK = 5000  # ledger rows fetched per round trip
WRITE_BATCH = 1000  # drift rows per INSERT
RECHECK_BATCH = 200  # drift rows re-checked per query (SQLite: keeps the OR chain and parameters small)
FOUR_PLACES = Decimal("0.0001")  # Budget.amount's decimal_places
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
SEEN = object()  # the ledger value of a key the ERP has shown us


class Unreadable(Exception):
    """An ERP record the sync would refuse too (no code...): counted, never compared."""


@dataclass(frozen=True)
class Comparison:
    """How one stream is compared: its fields (erp_id last), both sides, and a fresh look at the ledger."""

    stream: str
    fields: tuple[str, ...]
    ledger: Callable[[Q | None], Iterator[tuple[tuple, tuple]]]  # (key, values) of ledger rows (all, or matching)
    erp: Callable[[dict], tuple[tuple, tuple]]  # (key, values) of a canonical record; raises Unreadable
    lookup: Callable[[tuple], Q]  # the ledger row of one key


@dataclass
class ReconciliationResult:
    run_id: int
    compared: int = 0
    added: int = 0
    changed: int = 0
    deleted: int = 0
    unreadable: int = 0
    streams: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def drift(self) -> int:
        return self.added + self.changed + self.deleted

    def message(self) -> str:
        if not self.drift:
            text = f"No drift: {self.compared:,} ERP records match the workbench's copies."
        else:
            where = ", ".join(s for s, c in self.streams.items() if c["added"] or c["changed"] or c["deleted"])
            text = (
                f"{self.added} added, {self.changed} changed, {self.deleted} deleted in the ERP ({where}); "
                f"{self.compared:,} records compared."
            )
        if self.unreadable:
            text += f" {self.unreadable} ERP records could not be read and were not compared."
        return text


# --- the streams ---------------------------------------------------------------------------------


def _entity_codes() -> dict[int, str]:
    return dict(LegalEntity.objects.values_list("pk", "code"))


def _rows(qs, key_width: int, codes: dict[int, str] | None) -> Iterator[tuple[tuple, tuple]]:
    """values_list rows -> (key, values); the first column is an entity id when ``codes`` is given."""
    for row in qs.order_by().iterator(chunk_size=CHUNK):
        key = row[:key_width]
        if codes is not None:
            key = (codes.get(key[0], f"#{key[0]}"), *key[1:])
        yield key, row[key_width:]


def _erp_id(rec: dict, limit: int = 64) -> str:
    return str(rec.get("external_id") or "")[:limit]


def _scoped(stream: str) -> Comparison:
    """Entity-scoped master data (cost centers, accounts...): keyed by (entity code, code)."""
    model, copied = streams.STREAMS[stream]
    if stream in OBJECT_OF_STREAM:
        # A field another connected system owns (an employee's status: the identity provider) is not
        # the ERP's to differ on: comparing it would raise drift no "Accept the ERP's values" may fix.
        copied = list(Guard.for_source(OBJECT_OF_STREAM[stream], list(copied), Connection.Role.ERP).writable)
    fields = (*copied, "erp_id")

    def ledger(where: Q | None) -> Iterator[tuple[tuple, tuple]]:
        qs = model.objects.filter(where) if where is not None else model.objects.all()
        return _rows(qs.values_list("entity_id", "code", *fields), 2, _entity_codes())

    def erp(rec: dict) -> tuple[tuple, tuple]:
        if not rec.get("entity") or not rec.get("code"):
            raise Unreadable
        try:  # field_value quantizes as the column stores (discount percents to four places)
            values = tuple(streams.field_value(f, rec) for f in copied)
        except ValueError:  # the sync refuses it too: unreadable, not drift every night
            raise Unreadable from None
        return (str(rec["entity"]), str(rec["code"])[:40]), (*values, _erp_id(rec))

    return Comparison(stream, fields, ledger, erp, lambda key: Q(entity__code=key[0], code=key[1]))


def _legal_entities() -> Comparison:
    fields = ("name", "currency", "erp_id")

    def ledger(where: Q | None) -> Iterator[tuple[tuple, tuple]]:
        qs = LegalEntity.objects.filter(where) if where is not None else LegalEntity.objects.all()
        return _rows(qs.values_list("code", *fields), 1, None)

    def erp(rec: dict) -> tuple[tuple, tuple]:
        if not rec.get("code"):
            raise Unreadable
        # As masterdata_upsert stores them.
        return (str(rec["code"])[:20],), (
            str(rec.get("name") or "")[:200],
            str(rec.get("currency") or "USD")[:3],
            _erp_id(rec),
        )

    return Comparison("legal_entities", fields, ledger, erp, lambda key: Q(code=key[0]))


def _budgets() -> Comparison:
    fields = ("amount", "erp_id")

    def ledger(where: Q | None) -> Iterator[tuple[tuple, tuple]]:
        qs = Budget.objects.filter(where) if where is not None else Budget.objects.all()
        return _rows(qs.values_list("entity_id", "cost_center", "gl_account", "period", *fields), 4, _entity_codes())

    def erp(rec: dict) -> tuple[tuple, tuple]:
        # What the sync refuses (masterdata._upsert_other) is unreadable here, not drift every night.
        if not (rec.get("entity") and rec.get("cost_center") and rec.get("gl_account")):
            raise Unreadable
        try:
            amount = parse_amount(rec.get("amount"))
        except ValueError:
            raise Unreadable from None
        period = str(rec.get("period") or "")
        if not PERIOD.fullmatch(period) or abs(amount) >= 10**15:
            raise Unreadable
        key = (str(rec["entity"]), str(rec["cost_center"])[:40], str(rec["gl_account"])[:40], period[:7])
        # The column keeps four places; PostgreSQL rounds half away from zero when it stores more.
        return key, (amount.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP), _erp_id(rec))

    def lookup(key: tuple) -> Q:
        return Q(entity__code=key[0], cost_center=key[1], gl_account=key[2], period=key[3])

    return Comparison("budgets", fields, ledger, erp, lookup)


def comparisons() -> list[Comparison]:
    """One per master-data stream, in the sync's order (entities first)."""
    special = {"legal_entities": _legal_entities, "budgets": _budgets}
    return [special[s]() if s in special else _scoped(s) for s in MASTER_DATA_STREAMS]


# --- drift rows ----------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A compared value as it is shown and stored: dates ISO, amounts without trailing zeros."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, date):
        return value.isoformat()
    return value


def key_text(key: Iterable[str]) -> str:
    """entity/code (budgets entity/cost center/account/period); '/' and '%' in a part are escaped."""
    return "/".join(str(p).replace("%", "%25").replace("/", "%2F") for p in key)


def key_parts(text: str) -> tuple[str, ...]:
    return tuple(unquote(p) for p in text.split("/"))


def _drift(run: ReconciliationRun, cmp: Comparison, key: tuple, kind: str, ours, theirs) -> DriftRecord:
    if kind == DriftRecord.Kind.CHANGED:
        diffs = {f: [_json(a), _json(b)] for f, a, b in zip(cmp.fields, ours, theirs, strict=True) if a != b}
    elif kind == DriftRecord.Kind.ADDED:
        diffs = {f: [None, _json(b)] for f, b in zip(cmp.fields, theirs, strict=True)}
    else:
        diffs = {f: [_json(a), None] for f, a in zip(cmp.fields, ours, strict=True)}
    return DriftRecord(
        run=run,
        stream=cmp.stream,
        key=key_text(key),
        kind=kind,
        diffs=diffs,
        erp_id=str((theirs or ours)[-1] or "")[:64],
    )


# --- the comparison ------------------------------------------------------------------------------


def _reconcile_stream(run: ReconciliationRun, connector, cmp: Comparison) -> dict[str, int]:
    connection = run.connection
    ours: dict[tuple, Any] = dict(cmp.ledger(None))
    unreadable: set[str] = set()  # ERP ids (or a stand-in) of records that could not be compared
    compared = 0

    def on_page(page: Page) -> None:
        nonlocal compared
        drift, n = [], 0
        for rec in page.records:
            try:
                key, theirs = cmp.erp(rec)
            except Unreadable:
                unreadable.add(_erp_id(rec) or f"{cmp.stream}:{rec!r:.200}")
                continue
            mine = ours.get(key)
            if mine is SEEN:
                continue  # read again after a retry (or sent twice): compared already
            ours[key] = SEEN
            n += 1
            if mine is None:
                drift.append(_drift(run, cmp, key, DriftRecord.Kind.ADDED, None, theirs))
            elif mine != theirs:
                drift.append(_drift(run, cmp, key, DriftRecord.Kind.CHANGED, mine, theirs))
        unreadable.update(e.external_id or f"{cmp.stream}:{e.raw[:200]}" for e in page.errors)
        DriftRecord.objects.bulk_create(drift, batch_size=WRITE_BATCH)
        compared += n
        ReconciliationRun.objects.filter(pk=run.pk).update(compared=F("compared") + n)

    # A transient failure re-reads the stream from the start; keys already seen are skipped.
    read_with_retries(connection, lambda: connector.read(cmp.stream, None), on_page)

    gone: list[DriftRecord] = []
    for key, mine in ours.items():
        # A record the ERP still has but we could not read is unreadable, not deleted.
        if mine is not SEEN and mine[-1] not in unreadable:
            gone.append(_drift(run, cmp, key, DriftRecord.Kind.DELETED, mine, None))
            if len(gone) >= WRITE_BATCH:
                DriftRecord.objects.bulk_create(gone)
                gone = []
    DriftRecord.objects.bulk_create(gone)
    ours.clear()  # free it before the next stream loads
    _drop_fixed_meanwhile(run, cmp)
    kinds = dict(
        DriftRecord.objects.filter(run=run, stream=cmp.stream).values_list("kind").order_by().annotate(n=Count("id"))
    )
    return {
        "compared": compared,
        "added": kinds.get("added", 0),
        "changed": kinds.get("changed", 0),
        "deleted": kinds.get("deleted", 0),
        "unreadable": len(unreadable),
    }


def _drop_fixed_meanwhile(run: ReconciliationRun, cmp: Comparison) -> int:
    """Look at the ledger again for this stream's drift: what now agrees with the ERP was fixed by
    a master-data pull between our two reads, and is not drift."""
    index = {f: i for i, f in enumerate(cmp.fields)}
    fixed: list[int] = []
    rows = (
        DriftRecord.objects.filter(run=run, stream=cmp.stream).order_by("id").values_list("id", "key", "kind", "diffs")
    )
    batch: list[tuple] = []

    def check(batch: list[tuple]) -> None:
        keys = [key_parts(k) for _, k, _, _ in batch]
        now = dict(cmp.ledger(reduce(or_, (cmp.lookup(k) for k in keys))))
        for (pk, _, kind, diffs), key in zip(batch, keys, strict=True):
            mine = now.get(key)
            if kind == DriftRecord.Kind.DELETED:
                agrees = mine is None
            else:
                agrees = mine is not None and all(_json(mine[index[f]]) == erp for f, (_, erp) in diffs.items())
            if agrees:
                fixed.append(pk)

    for row in rows.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) >= RECHECK_BATCH:
            check(batch)
            batch = []
    if batch:
        check(batch)
    for i in range(0, len(fixed), WRITE_BATCH):
        DriftRecord.objects.filter(pk__in=fixed[i : i + WRITE_BATCH]).delete()
    return len(fixed)


def reconcile_master_data(run: ReconciliationRun) -> ReconciliationResult:
    """Compare every master-data stream of the run's ERP connection with the ledger; record drift.

    Raises ConnectorError when the ERP cannot be read (after retries); `run_reconciliation` records it.
    """
    connection = run.connection
    if connection.master_data_synced_at is None:
        raise Skipped("Waiting for the first master-data sync: until then every ERP record would be drift.")
    connector = connector_for(connection)
    streams = comparisons()
    ReconciliationRun.objects.filter(pk=run.pk).update(streams_total=len(streams))
    result = ReconciliationResult(run_id=run.pk)
    for cmp in streams:
        renew(connection, JOB, LEASE_SECONDS)
        counts = _reconcile_stream(run, connector, cmp)
        result.streams[cmp.stream] = counts
        for k in ("compared", "added", "changed", "deleted", "unreadable"):
            setattr(result, k, getattr(result, k) + counts[k])
        ReconciliationRun.objects.filter(pk=run.pk).update(
            streams_done=F("streams_done") + 1,
            added=result.added,
            changed=result.changed,
            deleted=result.deleted,
            unreadable=result.unreadable,
            summary=result.streams,
        )
    return result


def run_reconciliation(run: ReconciliationRun) -> ReconciliationRun:
    """Run one reconciliation to the end and record how it went. Never raises for vendor trouble."""

    def body() -> str:
        DriftRecord.objects.filter(run=run).delete()  # a redelivered task starts its run again from scratch
        result = reconcile_master_data(run)
        drift_items_raise(run, result)
        renew(run.connection, JOB, LEASE_SECONDS)
        postings = reconcile_postings(run, connector_for(run.connection))
        pruned = reconciliation_prune(connection=run.connection)
        return result.message() + postings.message() + (f" {pruned} old runs' detail pruned." if pruned else "")

    return run_recorded(
        run,
        job=JOB,
        body=body,
        lease_seconds=LEASE_SECONDS,
        reset={
            "compared": 0,
            "added": 0,
            "changed": 0,
            "deleted": 0,
            "unreadable": 0,
            "streams_done": 0,
            "summary": {},
            "message": "",
        },
    )


def drift_items_raise(run: ReconciliationRun, result: ReconciliationResult) -> None:
    """Every stream compared in full: its drift becomes (or stays, or stops being) a RECONCILIATION_DRIFT item."""
    named: dict[str, list[dict]] = {}
    for stream, counts in result.streams.items():
        if counts["added"] or counts["changed"] or counts["deleted"]:
            rows = DriftRecord.objects.filter(run=run, stream=stream).order_by("key")[: drift_work.NAMED]
            named[stream] = [
                {"key": d.key, "parts": key_parts(d.key), "kind": d.kind, "diffs": d.diffs, "erp_id": d.erp_id}
                for d in rows
            ]
    drift_work.reconciliation_drift_record(
        connection=run.connection, run_id=run.pk, streams=list(result.streams), drift=named, counts=result.streams
    )


def reconciliation_prune(*, connection: Connection) -> int:
    """Drop the drift rows and proof lines of runs older than the retention an admin set; the runs and
    their counts stay. Returns how many runs lost their detail."""
    old = ReconciliationRun.objects.filter(
        connection=connection, started_at__lt=drift_work.reconciliation_retention_cutoff()
    )
    runs = list(old.filter(Q(drift__isnull=False) | Q(proof__isnull=False)).values_list("pk", flat=True).distinct())
    DriftRecord.objects.filter(run_id__in=runs).delete()
    ProofLine.objects.filter(run_id__in=runs).delete()
    return len(runs)


def reconciliation_start(*, connection: Connection, actor=None) -> ReconciliationRun:
    """Queue a reconciliation now (the page's button); the nightly schedule calls the task directly."""
    run = ReconciliationRun.objects.create(
        connection=connection, triggered_by=actor.get_username() if actor else "schedule"
    )
    jobs.enqueue_on_commit(jobs.RECONCILE_MASTER_DATA, run_id=run.pk)
    return run


# --- selectors -----------------------------------------------------------------------------------


def reconciliation_run_list(*, limit: int = 20):
    return ReconciliationRun.objects.select_related("connection")[:limit]


def drift_record_list(*, run: ReconciliationRun, kind: str = "", stream: str = ""):
    qs = run.drift.all()
    if kind:
        qs = qs.filter(kind=kind)
    if stream:
        qs = qs.filter(stream=stream)
    return qs
