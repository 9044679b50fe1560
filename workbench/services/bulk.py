"""Bulk work on exception items: one action over a selection or a whole filtered set.

The table `ACTIONS` says, per action, which items it would change and why it skips the others
(`check`), and which single-item service does the work (`apply`): a bulk action is the single
action item by item (same events, same override policy and second-person rule), never a shortcut
around it. The items are always narrowed to the person's entities here, whatever ids were posted.

`bulk_preview` counts without changing anything; `bulk_start` records the request as a WorkJob
(kind "bulk") and `bulk_handle` runs it, inline for small sets or on the worker for large ones.
Each item's outcome is a `BulkOutcome` row written with its change, so running again does nothing twice.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from workbench import jobs, roles
from workbench.errors import WorkbenchError
from workbench.models import BulkOutcome, ExceptionItem, OverrideReason, OverrideRequest, WorkJob
from workbench.models.exceptions import Status
from workbench.services import overrides
from workbench.services.item_actions import exception_item_assign, exception_item_retry, exception_item_send_back
from workbench.services.snooze import exception_item_snooze, suggested_wait

KIND = "bulk"
MAX_ITEMS = 20_000  # one bulk request at most; a bigger set is narrowed with filters first
MAX_TEXT = overrides.MAX_TEXT
NOT_FOUND = "not found in your entities (or no longer there)"
CHANGED, REQUESTED, SKIPPED = BulkOutcome.Outcome.CHANGED, BulkOutcome.Outcome.REQUESTED, BulkOutcome.Outcome.SKIPPED


def inline_limit() -> int:
    """Sets up to this size run in the request; larger ones on the worker with a progress page."""
    return getattr(settings, "BULK_INLINE_MAX", 200)


# --- the action table ---------------------------------------------------------------------------


@dataclass
class Context:
    """What one check needs besides the item: the person, the action's arguments, and caches."""

    user: object
    args: dict
    pending: set[int] = field(default_factory=set)  # items with an override already waiting
    _why_not: dict = field(default_factory=dict)

    def override_why_not(self, item: ExceptionItem) -> str:
        key = (item.code, item.is_active)  # may_request reads only these and the person's role
        if key not in self._why_not:
            self._why_not[key] = overrides.may_request(self.user, item)
        return self._why_not[key]


Verdict = tuple[str, str]  # (outcome, reason when skipped)


def _kind_of_work(user, item: ExceptionItem) -> str:
    """The same rule as the single actions: finance items for finance, technical ones for engineers."""
    if roles.may_work(user, item):
        return ""
    if item.kind == ExceptionItem.Kind.TECHNICAL:
        return "a technical item: work for integration engineers"
    return "a finance item: work for finance analysts and managers"


def _check_retry(item: ExceptionItem, ctx: Context) -> Verdict:
    if not item.is_active:
        return SKIPPED, "no longer open"
    if item.status == Status.WAITING:
        return SKIPPED, "already waiting (a retry, the source or an approval)"
    if item.detail.get("accrual_journal_id"):
        return SKIPPED, "an accrual: a finance manager posts it again from the accruals screen"
    return CHANGED, ""


def _check_send_back(item: ExceptionItem, ctx: Context) -> Verdict:
    if not item.is_active:
        return SKIPPED, "no longer open"
    if item.status == Status.WAITING:
        return SKIPPED, "already waiting (a retry, the source or an approval)"
    if item.document_id is None and not item.detail.get("external_id"):
        return SKIPPED, "no source document to send back"
    return CHANGED, ""


def _check_assign(item: ExceptionItem, ctx: Context) -> Verdict:
    if not item.is_active:
        return SKIPPED, "no longer open"
    if item.assignee_id == ctx.args.get("assignee_id"):
        return SKIPPED, "already assigned to that person"
    return CHANGED, ""


def _check_override(item: ExceptionItem, ctx: Context) -> Verdict:
    why_not = ctx.override_why_not(item)
    if why_not:
        return SKIPPED, why_not
    if item.pk in ctx.pending:
        return SKIPPED, "an override of it already waits for approval"
    if overrides.needs_second_person(item, overrides.override_policy(item.code)):
        return REQUESTED, ""
    return CHANGED, ""


def _check_snooze(item: ExceptionItem, ctx: Context) -> Verdict:
    if not item.is_active:
        return SKIPPED, "no longer open"
    if item.status == Status.WAITING and not item.snoozed:
        return SKIPPED, "already waiting (a retry, the source or an approval)"
    if not ctx.args.get("until") and suggested_wait(item) is None:
        return SKIPPED, "no event would clear it: snooze it until a date"
    return CHANGED, ""


def _apply_snooze(item, user, args) -> None:
    """Until the date asked for, or until the event each item's own code suggests (its period, its supplier...)."""
    until = datetime.fromisoformat(args["until"]) if args.get("until") else None
    wait = None if until else suggested_wait(item)
    exception_item_snooze(
        item=item,
        actor=user,
        until=until,
        wait_for=wait.wait_for if wait else "",
        wait_key=wait.wait_key if wait else "",
        reason=args.get("reason", ""),
    )


def _apply_retry(item, user, args) -> None:
    exception_item_retry(item=item, actor=user)


def _apply_send_back(item, user, args) -> None:
    exception_item_send_back(item=item, reason=args.get("reason", ""), actor=user)


def _apply_assign(item, user, args) -> None:
    assignee = get_user_model().objects.filter(pk=args["assignee_id"]).first() if args.get("assignee_id") else None
    exception_item_assign(item=item, assignee=assignee, actor=user)


def _apply_override(item, user, args) -> None:
    overrides.override_request(item=item, actor=user, reason_code=args["reason_code"], text=args["reason"])


@dataclass(frozen=True)
class Action:
    verb: str  # "Retry", shown on buttons and in the summary
    check: Callable[[ExceptionItem, Context], Verdict]
    apply: Callable[[ExceptionItem, object, dict], None]


ACTIONS: dict[str, Action] = {
    "retry": Action("Retry", _check_retry, _apply_retry),
    "send_back": Action("Send back", _check_send_back, _apply_send_back),
    "assign": Action("Assign", _check_assign, _apply_assign),
    "override": Action("Override", _check_override, _apply_override),
    "snooze": Action("Snooze", _check_snooze, _apply_snooze),
}


def bulk_args_clean(*, action: str, raw: dict, user) -> dict:
    """The action's arguments, checked once for the whole set; a clear WorkbenchError otherwise."""
    if action not in ACTIONS:
        raise WorkbenchError("Choose what to do: retry, send back, assign, override or snooze.")
    reason = str(raw.get("reason", "")).strip()
    if len(reason) > MAX_TEXT or "\x00" in reason:
        raise WorkbenchError(f"Keep the reason to {MAX_TEXT:,} characters of plain text.")
    if action == "assign":
        name = str(raw.get("assignee", ""))[:150]
        if name == "me":
            return {"assignee_id": user.pk, "assignee": user.get_username()}
        if not name:
            return {"assignee_id": None, "assignee": ""}
        person = get_user_model().objects.filter(username=name, is_active=True).first()
        if person is None:
            raise WorkbenchError("Choose a person to assign to.")
        return {"assignee_id": person.pk, "assignee": person.get_username()}
    if action == "override":
        code = str(raw.get("reason_code", ""))[:30]
        if not OverrideReason.objects.filter(code=code, active=True).exists():
            raise WorkbenchError("Choose a reason code from the list.")
        if not reason:
            raise WorkbenchError("Say in a sentence why these are acceptable.")
        return {"reason_code": code, "reason": reason}
    if action == "send_back":
        return {"reason": reason}
    if action == "snooze":
        return {"until": _snooze_until(raw.get("until")), "reason": reason}
    return {}


def _snooze_until(raw) -> str:
    """A bulk snooze's date (the start of that day, UTC), checked once; "" means each item's own event."""
    text = str(raw or "").strip()[:10]
    if not text:
        return ""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise WorkbenchError(
            "Give the snooze date as YYYY-MM-DD, or leave it empty to wait for each item's event."
        ) from None
    until = timezone.make_aware(datetime.combine(day, time.min))
    if until <= timezone.now():
        raise WorkbenchError("The snooze date must be in the future.")
    return until.isoformat()


def clean_ids(values: Iterable) -> list[int]:
    """Posted ids as integers, in order, once each; anything that is not an id is dropped."""
    seen: dict[int, None] = {}
    for v in values:
        s = str(v)
        if s.isdecimal() and s.isascii() and len(s) < 12:
            seen.setdefault(int(s), None)
    return list(seen)


def _items(user, ids: list[int]):
    """Only the person's entities: an id from elsewhere is never read, let alone touched."""
    qs = ExceptionItem.objects.filter(pk__in=ids).select_related("entity", "document", "assignee")
    return roles.in_scope(qs, user)


def _context(user, args: dict, ids: list[int]) -> Context:
    pending = set(
        OverrideRequest.objects.filter(item_id__in=ids, state=OverrideRequest.State.PENDING).values_list(
            "item_id", flat=True
        )
    )
    return Context(user=user, args=args, pending=pending)


def _verdict(action: Action, item: ExceptionItem, ctx: Context) -> Verdict:
    why = _kind_of_work(ctx.user, item)
    return (SKIPPED, why) if why else action.check(item, ctx)


@dataclass
class Preview:
    action: str
    count: int = 0  # ids asked for
    changed: int = 0
    requested: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> n
    money: dict[str, Decimal] = field(default_factory=dict)  # currency -> at risk in the items it acts on

    @property
    def acts_on(self) -> int:
        return self.changed + self.requested

    @property
    def skip_reasons(self) -> list[tuple[str, int]]:
        return self.skipped.most_common()

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def verb(self) -> str:
        return ACTIONS[self.action].verb


def bulk_preview(*, user, action: str, ids: list[int], args: dict) -> Preview:
    """What the action would do to each of these items, counted; nothing is changed."""
    if len(ids) > MAX_ITEMS:
        raise WorkbenchError(
            f"{len(ids):,} items is more than one bulk action takes ({MAX_ITEMS:,}): narrow the filters."
        )
    spec = ACTIONS[action]
    ctx = _context(user, args, ids)
    preview = Preview(action=action, count=len(ids))
    found = 0
    for start in range(0, len(ids), 2000):
        for item in _items(user, ids[start : start + 2000]):
            found += 1
            outcome, why = _verdict(spec, item, ctx)
            if outcome == SKIPPED:
                preview.skipped[why] += 1
                continue
            if outcome == REQUESTED:
                preview.requested += 1
            else:
                preview.changed += 1
            # Per currency: amounts in different currencies are never added together.
            if item.currency and item.amount_at_risk:
                preview.money[item.currency] = preview.money.get(item.currency, Decimal(0)) + item.amount_at_risk
    if len(ids) > found:
        preview.skipped[NOT_FOUND] += len(ids) - found
    preview.money = dict(sorted(preview.money.items()))
    return preview


def bulk_title(action: str, args: dict, n: int) -> str:
    what = ACTIONS[action].verb
    if action == "assign":
        what = f"Assign to {args.get('assignee') or 'nobody'}:"
    return f"{what} {n:,} item{'s' if n != 1 else ''}"


def new_token() -> str:
    """One per preview: a confirmation posted twice (a double click, a resent form) makes one job."""
    return uuid.uuid4().hex


@transaction.atomic
def bulk_start(
    *, user, action: str, ids: list[int], args: dict, token: str = "", back_url: str = "", background: bool = False
) -> tuple[WorkJob, bool]:
    """Record the request (once per confirm token): (job, created). A background job is sent to the
    worker on commit; otherwise the caller runs it at once (`work_job_run`)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()  # one start at a time per person
    if token:
        existing = WorkJob.objects.filter(kind=KIND, requested_by=user, params__token=token).first()
        if existing is not None:
            return existing, False  # the same confirmation posted twice: one job
    params = {
        "action": action,
        "ids": ids,
        "args": args,
        "token": token or new_token(),
        "back_url": back_url,
        "background": background,
    }
    job = WorkJob.objects.create(
        kind=KIND, title=bulk_title(action, args, len(ids)), params=params, requested_by=user, total=len(ids)
    )
    if background:
        jobs.enqueue_on_commit(jobs.RUN_WORK_JOB, job_id=job.pk)
    return job, True


def bulk_handle(job: WorkJob, progress) -> dict:
    """Run a bulk job item by item through the single actions; an item already done by this job is left alone."""
    user, params = job.requested_by, job.params
    spec, args, ids = ACTIONS[params["action"]], params.get("args", {}), params.get("ids", [])
    done_ids = set(BulkOutcome.objects.filter(job=job).values_list("item_id", flat=True))
    ctx = _context(user, args, ids)
    total, n = len(ids), 0
    for start in range(0, total, 500):
        chunk = ids[start : start + 500]
        items = {i.pk: i for i in _items(user, chunk)}
        for pk in chunk:
            n += 1
            item = items.get(pk)
            if item is not None and pk not in done_ids:
                _run_one(job, spec, item, ctx)
            if n % 20 == 0:
                progress(n, total)
    progress(total, total)
    return bulk_summary(job)


def _run_one(job: WorkJob, spec: Action, item: ExceptionItem, ctx: Context) -> None:
    """One item: its change and its outcome row commit together, or neither."""
    with transaction.atomic():
        item = ExceptionItem.objects.select_related("entity", "document", "assignee").get(pk=item.pk)
        outcome, why = _verdict(spec, item, ctx)  # again: it may have changed since the preview
        if outcome != SKIPPED:
            try:
                with transaction.atomic():
                    spec.apply(item, ctx.user, ctx.args)
            except WorkbenchError as exc:
                outcome, why = SKIPPED, str(exc)
        BulkOutcome.objects.create(job=job, item=item, outcome=outcome, reason=why[:300])


def bulk_summary(job: WorkJob) -> dict:
    """What the person reads at the end: changed, waiting for a second person, skipped and why."""
    params = job.params
    rows = BulkOutcome.objects.filter(job=job)
    counts = Counter(rows.values_list("outcome", flat=True))
    skipped = Counter(rows.filter(outcome=SKIPPED).values_list("reason", flat=True))
    missing = len(params.get("ids", [])) - sum(counts.values())
    if missing > 0:
        skipped[NOT_FOUND] += missing
    verb = ACTIONS[params["action"]].verb
    changed, requested = counts.get(CHANGED, 0), counts.get(REQUESTED, 0)
    parts = [f"{verb}: {changed:,} item{'s' if changed != 1 else ''} changed"]
    if requested:
        parts.append(f"{requested:,} wait{'s' if requested == 1 else ''} for a finance manager's approval")
    if skipped:
        parts.append(
            f"{sum(skipped.values()):,} skipped (" + "; ".join(f"{n:,} {why}" for why, n in skipped.most_common()) + ")"
        )
    return {
        "message": ", ".join(parts) + ".",
        "back_url": params.get("back_url", ""),
        "changed": changed,
        "requested": requested,
        "skipped": dict(skipped.most_common()),
    }
