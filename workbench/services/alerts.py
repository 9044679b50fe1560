"""Alerts: save rules, and the evaluator that fires and resolves them (run every minute by sync).

Each rule's condition is one set-based query for the subjects it holds for now (connections, items,
entities). Compared with the rule's open firings, a new subject fires (one insert, claimed by the
unique "open firing per subject" constraint, so two evaluators at once fire it once) and tells the
rule's people through the inbox (one message per person and firing key, mailed if asked); a subject
that no longer holds is resolved by a conditional UPDATE, and the people told get one "resolved"
message. Chat messages are rows here, posted by sync outside any transaction (sync/alert_chat.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from workbench import roles
from workbench.chat import WebhookUrlError, chat_payload, webhook_url_check
from workbench.errors import WorkbenchError
from workbench.models import (
    AlertChatDelivery,
    AlertFiring,
    AlertRule,
    BacklogSample,
    Connection,
    ExceptionItem,
    LegalEntity,
    Notification,
)
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.money import fmt
from workbench.rules import ACCOUNTS_PAYABLE, CODES, FINANCE_EXPENSE, INTEGRATION, MASTER_DATA, PROCUREMENT
from workbench.services.notifications import notifications_send

log = logging.getLogger(__name__)

Condition = AlertRule.Condition

# A team is the owner_team items carry; its people are the roles that work that team's queue
# (there is no team membership table: roles are the people's memberships).
TEAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    FINANCE_EXPENSE: ("Expense accounting", (roles.ANALYST, roles.MANAGER)),
    ACCOUNTS_PAYABLE: ("Accounts payable", (roles.ANALYST, roles.MANAGER)),
    PROCUREMENT: ("Procurement", (roles.ANALYST, roles.MANAGER)),
    MASTER_DATA: ("Master data (finance systems)", (roles.ADMIN,)),
    INTEGRATION: ("Integration", (roles.ENGINEER,)),
}
TARGET_ROLES = (roles.ANALYST, roles.MANAGER, roles.ENGINEER, roles.ADMIN, roles.AUDITOR)
ITEM_CONDITIONS = (Condition.AMOUNT_ABOVE, Condition.SLA_BREACHED, Condition.CLOSE_RISK, Condition.BACKLOG_GROWTH)
# Per rule and run: a rule matching 100,000 items at once fires in batches over the next minutes
# instead of holding one evaluator (and the inboxes) for an hour.
MAX_CHANGES_PER_RUN = 200
MAX_MINUTES = 60 * 24 * 30
MAX_HOURS = 24 * 90
MAX_AMOUNT = Decimal("1e15")
STALE_SENDING = timedelta(minutes=10)  # a chat claim older than this was a worker that died


class AlertRuleInvalid(WorkbenchError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(errors.values()))


# --- rules ------------------------------------------------------------------------------------------


FIELDS = (
    "name", "condition", "enabled", "minutes", "hours", "amount", "currency", "growth", "entity", "kind", "code",
    "target", "target_role", "target_team", "target_person", "email", "chat_format", "chat_url",
)  # fmt: skip


def alert_rule_problems(rule: AlertRule) -> dict[str, str]:
    """What is wrong with a rule, field by field, in words an admin can act on."""
    errors: dict[str, str] = {}
    c = rule.condition
    if not (rule.name or "").strip():
        errors["name"] = "Give the rule a name."
    if c not in Condition.values:
        errors["condition"] = "Choose a condition."
    if c == Condition.CONNECTION_DOWN and not (rule.minutes and 1 <= rule.minutes <= MAX_MINUTES):
        errors["minutes"] = f"Enter after how many minutes of outage to alert (1 to {MAX_MINUTES})."
    if c in (Condition.CLOSE_RISK, Condition.BACKLOG_GROWTH) and not (rule.hours and 1 <= rule.hours <= MAX_HOURS):
        errors["hours"] = f"Enter a number of hours (1 to {MAX_HOURS})."
    if c == Condition.BACKLOG_GROWTH and not (rule.growth and rule.growth <= 10**7):
        errors["growth"] = "Enter by how many active items the backlog may grow in that time."
    if c == Condition.AMOUNT_ABOVE:
        if rule.amount is None or not (0 <= rule.amount < MAX_AMOUNT):
            errors["amount"] = "Enter an amount, 0 or more."
        if not (len(rule.currency or "") == 3 and rule.currency.isascii() and rule.currency.isupper()):
            errors["currency"] = (
                "Enter the ISO currency of the amount (e.g. EUR): items in other currencies are not compared."
            )
    if c == Condition.CONNECTION_DOWN and (rule.entity_id or rule.kind or rule.code):
        errors["entity"] = "Entity, kind and code filters apply to item conditions, not to connections."
    if rule.kind and rule.kind not in ExceptionItem.Kind.values:
        errors["kind"] = "Kind is business or technical."
    if rule.code and rule.code not in CODES:
        errors["code"] = f"There is no exception code {rule.code[:40]!r}."
    if rule.target == AlertRule.Target.ROLE and not (rule.target_role_id and rule.target_role.name in TARGET_ROLES):
        errors["target_role"] = "Choose the role to tell."
    elif rule.target == AlertRule.Target.TEAM and rule.target_team not in TEAMS:
        errors["target_team"] = "Choose the team to tell."
    elif rule.target == AlertRule.Target.PERSON and not (rule.target_person_id and rule.target_person.is_active):
        errors["target_person"] = "Choose the person to tell."
    elif rule.target not in AlertRule.Target.values:
        errors["target"] = "Choose whom to tell."
    if rule.chat_format not in AlertRule.ChatFormat.values:
        errors["chat_format"] = "Choose Slack or Teams."
    elif rule.chat_format and not rule.chat_url:
        errors["chat_url"] = "Enter the chat's incoming webhook URL."
    elif rule.chat_url and not rule.chat_format:
        errors["chat_format"] = "Say which chat the webhook belongs to (Slack or Teams)."
    elif rule.chat_url:
        try:
            rule.chat_url = webhook_url_check(rule.chat_url)
        except WebhookUrlError as exc:
            errors["chat_url"] = str(exc)
    return errors


# The thresholds each condition reads; the others are emptied on save, so a value typed for another
# condition (and hidden by the form) never lingers in a rule.
THRESHOLDS = {
    Condition.CONNECTION_DOWN: {"minutes"},
    Condition.AMOUNT_ABOVE: {"amount", "currency"},
    Condition.SLA_BREACHED: set(),
    Condition.CLOSE_RISK: {"hours"},
    Condition.BACKLOG_GROWTH: {"hours", "growth"},
}
TARGET_FIELDS = {"role": "target_role", "team": "target_team", "person": "target_person"}


def _drop_unused(rule: AlertRule) -> None:
    keep = THRESHOLDS.get(rule.condition, set())
    for name in ("minutes", "hours", "amount", "growth"):
        if name not in keep:
            setattr(rule, name, None)
    if "currency" not in keep:
        rule.currency = ""
    for target, name in TARGET_FIELDS.items():
        if target != rule.target:
            setattr(rule, name, "" if name == "target_team" else None)


@transaction.atomic(durable=True)
def alert_rule_save(*, rule: AlertRule | None = None, values: dict, actor) -> AlertRule:
    """Create or change a rule (the audit trail records it, minus the webhook URL); AlertRuleInvalid if wrong."""
    rule = rule if rule is not None else AlertRule()
    for name in FIELDS:
        if name in values:
            setattr(rule, name, values[name])
    rule.name = (rule.name or "").replace("\x00", "").strip()[:100]
    _drop_unused(rule)
    errors = alert_rule_problems(rule)
    if not errors and AlertRule.objects.filter(name=rule.name).exclude(pk=rule.pk).exists():
        errors["name"] = "Another rule has this name."
    if errors:
        raise AlertRuleInvalid(errors)
    rule.updated_by, rule.updated_at = actor, timezone.now()
    rule.save()
    return rule


# --- subjects: what a rule holds for, now -----------------------------------------------------------


@dataclass
class Subject:
    key: str
    title: str
    body: str = ""
    url: str = ""
    item: ExceptionItem | None = None
    connection_id: int | None = None
    entity_id: int | None = None


def _items(rule: AlertRule):
    qs = ExceptionItem.objects.filter(status__in=ACTIVE_STATUSES)
    if rule.entity_id:
        qs = qs.filter(entity_id=rule.entity_id)
    if rule.kind:
        qs = qs.filter(kind=rule.kind)
    if rule.code:
        qs = qs.filter(code=rule.code)
    if rule.target == AlertRule.Target.TEAM:
        qs = qs.filter(owner_team=rule.target_team)  # a team is told about its own items
    return qs


def _matching_items(rule: AlertRule, now):
    qs = _items(rule)
    if rule.condition == Condition.AMOUNT_ABOVE:
        # Only the rule's currency: an amount in another currency is never compared with it.
        return qs.filter(currency=rule.currency, amount_at_risk__gt=rule.amount)
    if rule.condition == Condition.SLA_BREACHED:
        return qs.filter(sla_due_at__lt=now)
    if rule.condition == Condition.CLOSE_RISK:
        return qs.filter(close_due_at__isnull=False, close_due_at__lte=now + timedelta(hours=rule.hours))
    raise ValueError(rule.condition)


def _current(rule: AlertRule, now) -> dict[str, object] | None:
    """Subject key -> what describing it needs, for every connection or entity the condition holds
    for now (a handful); None: cannot tell yet, leave the firings as they are."""
    if rule.condition == Condition.CONNECTION_DOWN:
        cutoff = now - timedelta(minutes=rule.minutes)
        ids = Connection.objects.filter(
            enabled=True, health=Connection.Health.DOWN, down_since__isnull=False, down_since__lte=cutoff
        ).values_list("id", flat=True)
        return {f"connection:{pk}": pk for pk in ids}
    return _backlog(rule, now)


def _changes(rule: AlertRule, now) -> tuple[dict[str, object], list[int]] | None:
    """(subjects to fire, open firings to resolve), at most MAX_CHANGES_PER_RUN of each."""
    open_firings = AlertFiring.objects.filter(rule=rule, resolved_at__isnull=True)
    if rule.condition in (Condition.CONNECTION_DOWN, Condition.BACKLOG_GROWTH):
        current = _current(rule, now)
        if current is None:
            return None
        open_keys = dict(open_firings.values_list("subject_key", "id"))
        new = [(k, v) for k, v in current.items() if k not in open_keys][:MAX_CHANGES_PER_RUN]
        gone = [pk for key, pk in open_keys.items() if key not in current][:MAX_CHANGES_PER_RUN]
        return dict(new), gone
    # Items: both differences are computed by the database, so 100,000 matching items stay there.
    matching = _matching_items(rule, now)
    new_ids = (
        matching.exclude(pk__in=open_firings.filter(item__isnull=False).values("item_id"))
        .order_by("id")
        .values_list("id", flat=True)[:MAX_CHANGES_PER_RUN]
    )
    gone = open_firings.filter(Q(item__isnull=True) | ~Q(item_id__in=matching.values("id"))).order_by("id")
    return {f"item:{pk}": pk for pk in new_ids}, list(gone.values_list("id", flat=True)[:MAX_CHANGES_PER_RUN])


def _entity_key(entity_id) -> str:
    return f"entity:{entity_id or 'none'}"


def _backlog(rule: AlertRule, now) -> dict[str, object] | None:
    """Entities whose active items grew by more than `growth` in the last `hours`, from this rule's samples."""
    counts = {
        _entity_key(row["entity_id"]): row["n"]
        for row in _items(rule).order_by().values("entity_id").annotate(n=Count("id"))
    }
    # One sample per entity, plus the rule's total under "": that row says "counted at this minute",
    # so an entity missing from an old batch had no active items then.
    BacklogSample.objects.bulk_create(
        [BacklogSample(rule=rule, subject_key=k, taken_at=now, active=n) for k, n in counts.items()]
        + [BacklogSample(rule=rule, subject_key="", taken_at=now, active=sum(counts.values()))]
    )
    cutoff = now - timedelta(hours=rule.hours)
    then_at = BacklogSample.objects.filter(rule=rule, subject_key="", taken_at__lte=cutoff).aggregate(
        at=Max("taken_at")
    )["at"]
    if then_at is None:
        return None  # not watched for `hours` yet
    BacklogSample.objects.filter(rule=rule, taken_at__lt=then_at).delete()  # only the latest old batch is read
    then = dict(
        BacklogSample.objects.filter(rule=rule, taken_at=then_at)
        .exclude(subject_key="")
        .values_list("subject_key", "active")
    )
    return {k: (then.get(k, 0), n) for k, n in counts.items() if n - then.get(k, 0) > rule.growth}


def _item_title(rule: AlertRule, item: ExceptionItem) -> str:
    where = f" on {item.document}" if item.document_id else ""
    entity = f" ({item.entity.code})" if item.entity_id else ""
    if rule.condition == Condition.SLA_BREACHED:
        what = f"SLA breached: {item.code}{where}{entity}, due {item.sla_due_at:%Y-%m-%d %H:%M} UTC"
    elif rule.condition == Condition.CLOSE_RISK:
        what = f"Close risk: {item.code}{where}{entity}, period closes {item.close_due_at:%Y-%m-%d %H:%M} UTC"
    else:
        what = f"{fmt(item.amount_at_risk, item.currency)} at risk: {item.code}{where}{entity}"
    return f"{rule.name}: {what}"


def _describe(rule: AlertRule, wanted: dict[str, object]) -> list[Subject]:
    """The subjects behind these keys, in a fixed number of queries."""
    if rule.condition == Condition.CONNECTION_DOWN:
        out = []
        for conn in Connection.objects.filter(pk__in=wanted.values()):
            since = f"{conn.down_since:%Y-%m-%d %H:%M} UTC" if conn.down_since else "a while"
            out.append(
                Subject(
                    key=f"connection:{conn.pk}",
                    title=f"{rule.name}: {conn.name} is down since {since}",
                    body=(conn.last_error or "")[:1000],
                    url=reverse("sync:page"),
                    connection_id=conn.pk,
                )
            )
        return out
    if rule.condition == Condition.BACKLOG_GROWTH:
        ids = [int(k.split(":")[1]) for k in wanted if not k.endswith(":none")]
        codes = dict(LegalEntity.objects.filter(pk__in=ids).values_list("pk", "code"))
        out = []
        for key, (then, now_n) in wanted.items():
            eid = None if key.endswith(":none") else int(key.split(":")[1])
            name = codes.get(eid, "no entity")
            query = urlencode({"entity": codes[eid]}) if eid in codes else ""
            out.append(
                Subject(
                    key=key,
                    title=f"{rule.name}: backlog of {name} grew by {now_n - then} in {rule.hours} h",
                    body=f"Active items: {then} {rule.hours} h ago, {now_n} now (alert above +{rule.growth}).",
                    url=reverse("queue:list") + (f"?{query}" if query else ""),
                    entity_id=eid,
                )
            )
        return out
    items = ExceptionItem.objects.filter(pk__in=wanted.values()).select_related("document", "entity")
    return [
        Subject(
            key=f"item:{item.pk}",
            title=_item_title(rule, item)[:300],
            body=item.message[:1000],
            url=reverse("items:detail", args=[item.pk]),
            item=item,
            entity_id=item.entity_id,
        )
        for item in items
    ]


# --- who is told ------------------------------------------------------------------------------------


def alert_recipients(rule: AlertRule, entity_id: int | None) -> list[int]:
    """The rule's people who may see the subject: an entity's subject goes to those who work on that
    entity; one with no entity (a connection) to those who work on all (as `roles.in_scope` shows it)."""
    people = get_user_model().objects.filter(is_active=True)
    if rule.target == AlertRule.Target.ROLE:
        people = people.filter(groups=rule.target_role_id)
    elif rule.target == AlertRule.Target.TEAM:
        people = people.filter(groups__name__in=TEAMS.get(rule.target_team, ("", ()))[1])
    else:
        people = people.filter(pk=rule.target_person_id)
    scope = Q(is_superuser=True) | Q(scope__all_entities=True)
    if entity_id is not None:
        scope |= Q(scope__entities=entity_id)
    return sorted(set(people.filter(scope).values_list("pk", flat=True)))


def _tell(firing: AlertFiring, *, recipients, resolved: bool) -> None:
    rule = firing.rule
    notifications_send(
        recipients=recipients,
        kind="alert_resolved" if resolved else "alert",
        title=f"Resolved: {firing.title}" if resolved else firing.title,
        body=_resolved_body(firing) if resolved else firing.body,
        url=firing.url,
        item=firing.item if firing.item_id else None,
        key=firing.resolved_key if resolved else firing.notification_key,
        email=rule.email,
    )


def _resolved_body(firing: AlertFiring) -> str:
    minutes = int((firing.resolved_at - firing.fired_at).total_seconds() // 60)
    return f"No longer holds after {minutes} min (fired {firing.fired_at:%Y-%m-%d %H:%M} UTC)."


def _fire(rule: AlertRule, subject: Subject, now, recipients: list[int] | None = None) -> bool:
    try:
        with transaction.atomic():
            firing = AlertFiring.objects.create(
                rule=rule,
                subject_key=subject.key,
                title=subject.title[:300],
                body=subject.body,
                url=subject.url[:500],
                item=subject.item,
                connection_id=subject.connection_id,
                entity_id=subject.entity_id,
                fired_at=now,
            )
            if recipients is None:
                recipients = alert_recipients(rule, subject.entity_id)
            _tell(firing, recipients=recipients, resolved=False)
            if rule.chat_format and rule.chat_url:
                AlertChatDelivery.objects.create(firing=firing, phase=AlertChatDelivery.Phase.FIRED)
    except IntegrityError:
        return False  # another evaluator fired this subject first
    return True


def _resolve(firing: AlertFiring, now, *, resolution: str, tell: bool) -> bool:
    with transaction.atomic():
        if not AlertFiring.objects.filter(pk=firing.pk, resolved_at__isnull=True).update(
            resolved_at=now, resolution=resolution
        ):
            return False  # another evaluator resolved it
        firing.resolved_at, firing.resolution = now, resolution
        if tell:
            # The same people and channels as when it fired, even if the rule's target changed since.
            told = Notification.objects.filter(key=firing.notification_key).values_list("recipient_id", flat=True)
            _tell(firing, recipients=list(told), resolved=True)
            if firing.chats.filter(phase=AlertChatDelivery.Phase.FIRED).exists() and firing.rule.chat_url:
                AlertChatDelivery.objects.get_or_create(firing=firing, phase=AlertChatDelivery.Phase.RESOLVED)
    return True


def alert_rule_evaluate(rule: AlertRule, now) -> dict[str, int]:
    counts = {"fired": 0, "resolved": 0}
    if not rule.enabled:
        counts["resolved"] = AlertFiring.objects.filter(rule=rule, resolved_at__isnull=True).update(
            resolved_at=now, resolution="rule switched off"
        )
        return counts
    changes = _changes(rule, now)
    if changes is None:
        return counts
    new, gone = changes
    people: dict[int | None, list[int]] = {}  # per entity: one query for the whole run, not one per item
    for subject in _describe(rule, new):
        if subject.entity_id not in people:
            people[subject.entity_id] = alert_recipients(rule, subject.entity_id)
        counts["fired"] += _fire(rule, subject, now, people[subject.entity_id])
    for firing in AlertFiring.objects.filter(pk__in=gone).select_related("rule", "item"):
        counts["resolved"] += _resolve(firing, now, resolution="cleared", tell=True)
    return counts


def alerts_evaluate(*, now=None) -> dict[str, int]:
    """Fire and resolve every rule's alerts once; safe to run twice, and two at once."""
    now = now or timezone.now()
    total = {"rules": 0, "fired": 0, "resolved": 0, "broken": 0}
    for rule in AlertRule.objects.select_related("target_role", "target_person"):
        try:
            counts = alert_rule_evaluate(rule, now)
        except Exception:  # noqa: BLE001 - one broken rule must not silence the others
            log.exception("alert rule %s could not be evaluated", rule.pk)
            total["broken"] += 1
            continue
        total["rules"] += 1
        total["fired"] += counts["fired"]
        total["resolved"] += counts["resolved"]
    return total


# --- chat deliveries (posted by sync) ---------------------------------------------------------------


def alert_chats_claim(*, limit: int = 50) -> list[AlertChatDelivery]:
    """Pending chat messages (and ones a dead worker left half-sent), each claimed by this caller alone."""
    now = timezone.now()
    waiting = Q(status=AlertChatDelivery.Status.PENDING) | Q(
        status=AlertChatDelivery.Status.SENDING, claimed_at__lt=now - STALE_SENDING
    )
    claimed = []
    for d in AlertChatDelivery.objects.filter(waiting).order_by("id")[:limit]:
        if AlertChatDelivery.objects.filter(pk=d.pk, status=d.status, claimed_at=d.claimed_at).update(
            status=AlertChatDelivery.Status.SENDING, claimed_at=now
        ):
            claimed.append(d.pk)
    return list(
        AlertChatDelivery.objects.filter(pk__in=claimed).select_related("firing", "firing__rule").order_by("id")
    )


def alert_chat_message(delivery: AlertChatDelivery) -> tuple[str, dict]:
    """(webhook URL, JSON body) for one chat delivery, in the rule's chat's shape."""
    firing, rule = delivery.firing, delivery.firing.rule
    resolved = delivery.phase == AlertChatDelivery.Phase.RESOLVED
    title = f"Resolved: {firing.title}" if resolved else firing.title
    text = _resolved_body(firing) if resolved and firing.resolved_at else firing.body
    link = f"{settings.PUBLIC_URL.rstrip('/')}{firing.url}" if firing.url else ""
    return rule.chat_url, chat_payload(rule.chat_format, title=title, text=text, link=link, resolved=resolved)


def alert_chat_recorded(*, delivery: AlertChatDelivery, ok: bool, attempts: int, error: str = "") -> None:
    AlertChatDelivery.objects.filter(pk=delivery.pk).update(
        status=AlertChatDelivery.Status.SENT if ok else AlertChatDelivery.Status.FAILED,
        attempts=attempts,
        last_error="" if ok else error[:2000],
        sent_at=timezone.now() if ok else None,
    )


# --- the screen -------------------------------------------------------------------------------------


def alert_firings_told(firings) -> dict[int, list[str]]:
    """Firing id -> the user names told (when fired), read back from the inbox in one query."""
    keys = {f.notification_key: f.pk for f in firings}
    told: dict[int, list[str]] = {pk: [] for pk in keys.values()}
    rows = (
        Notification.objects.filter(key__in=keys)
        .values_list("key", "recipient__username")
        .order_by("key", "recipient__username")
    )
    for key, username in rows:
        told[keys[key]].append(username)
    return told


def target_label(rule: AlertRule) -> str:
    if rule.target == AlertRule.Target.ROLE:
        return f"Role: {rule.target_role.name}" if rule.target_role_id else "Role: —"
    if rule.target == AlertRule.Target.TEAM:
        return f"Team: {TEAMS.get(rule.target_team, (rule.target_team,))[0]}"
    return f"Person: {rule.target_person.get_username()}" if rule.target_person_id else "Person: —"


def role_groups():
    return Group.objects.filter(name__in=TARGET_ROLES).order_by("name")
