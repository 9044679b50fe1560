"""The Master data page: who owns each field, the conflicts waiting for a decision, the crosswalk.

Everyone can read it; only admins (staff) change an owner or decide a conflict. Changing an owner
applies the values the new owner was held back on, so one decision clears a whole group of
conflicts. Keeping the owner's value is an override with a reason (the item's history keeps it).
"""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from workbench import roles
from workbench.errors import WorkbenchError
from workbench.models import Connection, ExceptionItem, FieldOwnership, MasterDataLink
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.services import ownership
from workbench.services.item_actions import exception_item_override
from workbench.web.scoping import item_or_404

PAGE_SIZE = 50


def _fields(own: dict, connected: set[str], open_by_field: Counter, history: dict) -> list[dict]:
    rows = []
    for obj, (label, _stream, fields) in ownership.OBJECTS.items():
        for field, default in fields.items():
            owner = own[(obj, field)]
            rows.append(
                {
                    "object": obj,
                    "object_label": label,
                    "field": field,
                    "field_label": ownership.field_label(field),
                    "owner": owner,
                    "owner_label": ownership.role_label(owner),
                    "default": owner == default,
                    "enforced": owner in connected,
                    "open": open_by_field[(obj, field)],
                    "last": history.get((obj, field)),
                }
            )
    return rows


def masterdata_page(request):
    own, connected = ownership.owners(), ownership.connected_roles()
    active = ExceptionItem.objects.filter(code=ownership.CODE, status__in=ACTIVE_STATUSES)
    open_by_field = Counter(
        (i["detail__object"], i["detail__field"]) for i in active.values("detail__object", "detail__field")
    )
    history: dict = {}
    for change in FieldOwnership.objects.select_related("changed_by").order_by("-id")[:500]:
        history.setdefault((change.object_type, change.field), change)
    page = Paginator(active.select_related("connection", "group").order_by("opened_at", "id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    for item in page.object_list:
        d = item.detail
        item.owner_label = ownership.role_label(d.get("owner", ""))
        item.field_label = ownership.field_label(d.get("field", ""))
        item.object_label = ownership.OBJECTS.get(d.get("object"), ("",))[0]
    links = (
        MasterDataLink.objects.values("object_type", "system", "status")
        .annotate(n=Count("id"))
        .order_by("object_type", "system", "status")
    )
    context = {
        "fields": _fields(own, connected, open_by_field, history),
        "page": page,
        "links": links,
        "roles": Connection.Role.choices,
        "connected": [ownership.role_label(r) for r in sorted(connected)],
        "can_edit": request.user.has_perm(roles.CONFIGURE),
    }
    return render(request, "workbench/masterdata.html", context)


@require_POST
def owner_set(request):
    obj, field, owner = (request.POST.get(k, "")[:40] for k in ("object", "field", "owner"))
    try:
        n = ownership.ownership_set(
            object_type=obj, field=field, owner=owner, actor=request.user, reason=request.POST.get("reason", "")[:2000]
        )
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        label = ownership.OBJECTS[obj][0].lower()
        messages.success(
            request,
            f"{ownership.role_label(owner)} now owns the {ownership.field_label(field)} of a {label}"
            + (f"; {n} waiting change{'s' if n != 1 else ''} applied." if n else "."),
        )
    return redirect("masterdata:page")


@require_POST
def conflict_keep(request, pk):
    """Keep the owner's value: the sender's change stays out, and the reason is on the record."""
    item = item_or_404(request, pk, ExceptionItem.objects.filter(code=ownership.CODE))
    reason = request.POST.get("reason", "").strip()[:2000]
    try:
        if not reason:
            raise WorkbenchError("Say why the owner's value is kept (the sender may need correcting).")
        exception_item_override(
            item=item,
            reason=f"Kept {ownership.role_label(item.detail.get('owner', ''))}'s value: {reason}",
            actor=request.user,
        )
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Kept the owner's value for {item.detail.get('code')} ({item.detail.get('field')}).")
    return redirect("masterdata:page")
