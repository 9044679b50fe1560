"""People's accounts as the identity provider sees them: signed in through single sign-on, and ended
when the directory deactivates the person.

Single sign-on (`workbench/web/oidc.py` verifies the ID token; this module decides what it means):
the claims name the account (the sign-in name, lower-cased), its roles and its legal entities, and
replace the roles and the entity scope at every sign-in (`UserScope.managed_by_sso`). An account
with a usable local password that SSO has never managed, and any superuser, is never taken over by a
sign-in with the same name: local passwords stay for the demo and the break-glass administrator.

Deactivation: a person the directory marks inactive loses the workbench at once, not when a session
happens to expire: the account is deactivated, its API tokens revoked and its sessions deleted.
Each change is recorded in the audit trail (the model signals of `services/audit.py`, plus one
"deactivated" record with the reason and what was ended).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from workbench.errors import WorkbenchError
from workbench.models import ApiToken, LegalEntity, UserScope
from workbench.roles import ADMIN, ROLES
from workbench.services.audit import audit_record


class SignInRefused(WorkbenchError):
    """Single sign-on proved who the person is, but the workbench does not let them in (the message says why)."""


@dataclass(frozen=True)
class SsoIdentity:
    """What a verified ID token says about a person, in the workbench's terms."""

    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)  # role group names (workbench.roles)
    entity_codes: frozenset[str] = field(default_factory=frozenset)
    all_entities: bool = False


@transaction.atomic
def account_sign_in_sso(*, identity: SsoIdentity):
    """The account for a person single sign-on vouched for, created or brought in line with the claims.

    Raises `SignInRefused` for no role, a deactivated account, or an account SSO may not take over.
    """
    unknown = identity.roles - set(ROLES)
    if unknown:
        raise ValueError(f"not workbench roles: {sorted(unknown)}")
    if not identity.roles:
        raise SignInRefused("Your account has no role in the workbench. Ask an administrator to assign one.")
    username = identity.username.strip().lower()
    if not username:
        raise SignInRefused("The identity provider sent no user name.")
    users = get_user_model()
    user = users.objects.select_for_update().filter(username__iexact=username).first()
    if user is None:
        user = users(username=username)
        user.set_unusable_password()
    else:
        scope = UserScope.objects.filter(user=user).first()
        if user.is_superuser or (user.has_usable_password() and not (scope and scope.managed_by_sso)):
            raise SignInRefused(f"The account {user.username} signs in with its password, not single sign-on.")
        if not user.is_active:
            raise SignInRefused("This account is deactivated.")
    user.email = identity.email[:254]
    user.first_name, user.last_name = identity.first_name[:150], identity.last_name[:150]
    user.is_staff = ADMIN in identity.roles  # the admin site; never superuser through single sign-on
    user.is_superuser = False
    user.save()

    keep = [g for g in user.groups.all() if g.name not in ROLES]
    user.groups.set(keep + [Group.objects.get_or_create(name=name)[0] for name in sorted(identity.roles)])
    scope, _ = UserScope.objects.update_or_create(
        user=user, defaults={"all_entities": identity.all_entities, "managed_by_sso": True}
    )
    scope.entities.set(
        [] if identity.all_entities else LegalEntity.objects.filter(code__in=sorted(identity.entity_codes))
    )
    return user


def _sessions_end(user) -> int:
    """Delete every stored session of the account (database-backed session engines; with others the
    deactivated account is refused at its next request anyway)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    get_model = getattr(store, "get_model_class", None)
    if get_model is None:
        return 0
    ended = 0
    for row in get_model().objects.filter(expire_date__gt=timezone.now()).iterator():
        if row.get_decoded().get(SESSION_KEY) == str(user.pk):
            store(row.session_key).delete()
            ended += 1
    return ended


@transaction.atomic
def account_deactivate(*, user, reason: str, actor=None) -> bool:
    """Deactivate the account, revoke its API tokens and end its sessions. False if it was inactive already."""
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        return False
    user.is_active = False
    user.save(update_fields=["is_active"])
    now = timezone.now()
    tokens = list(ApiToken.objects.filter(user=user, revoked_at__isnull=True))
    for token in tokens:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
    sessions = _sessions_end(user)
    audit_record(
        source="auth.User",
        row_id=user.pk,
        action="deactivated",
        data={"reason": reason, "tokens_revoked": len(tokens), "sessions_ended": sessions, "object": user.username},
        actor=actor,
    )
    return True


def accounts_deactivate_departed(*, emails: list[str], reason: str) -> list[str]:
    """Deactivate the active accounts of people the directory says have gone, found by sign-in name or
    e-mail address (case-insensitive). Returns the user names deactivated."""
    wanted = sorted({e.strip().lower() for e in emails if e and e.strip()})
    if not wanted:
        return []
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .annotate(username_lower=Lower("username"), email_lower=Lower("email"))
        .filter(Q(username_lower__in=wanted) | Q(email_lower__in=wanted))
    )
    return [u.username for u in users if account_deactivate(user=u, reason=reason)]
