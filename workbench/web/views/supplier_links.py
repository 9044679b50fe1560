"""The supplier crosswalk screen: external suppliers beside the ERP vendor they are (or may be).

Everyone can read it; admins (staff) confirm a proposed vendor, pick another, or reject one. Actions
answer HTMX with the row re-rendered (and a toast); a plain POST redirects back to the row.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from workbench.errors import WorkbenchError
from workbench.models import LegalEntity, MasterDataLink, Supplier
from workbench.selectors.suppliers import (
    LINK,
    OBJECT_TYPE,
    supplier_link_counts,
    supplier_link_list,
    supplier_links_annotate,
    system_label,
)
from workbench.services.supplier_links import WAITING, supplier_link_confirm, supplier_link_reject
from workbench.values import printable

PAGE_SIZE = 50
DATALIST_LIMIT = 2000  # vendor numbers offered while typing; beyond that the number is typed and checked
TEMPLATE = "workbench/supplier_links.html"


def _pick_choices(*, page: bool = False) -> dict:
    """Entities for the pick form; the vendor numbers offered while typing (a datalist on the page)."""
    datalist = Supplier.objects.count() <= DATALIST_LIMIT
    vendors = Supplier.objects.select_related("entity").order_by("code", "entity__code") if datalist and page else None
    return {
        "entities": LegalEntity.objects.order_by("code").values_list("code", flat=True),
        "datalist": datalist,
        "vendors": vendors,
    }


@vary_on_headers("HX-Request")
def supplier_links_page(request):
    q = printable(request.GET.get("q", ""))[:100]
    waiting = Paginator(supplier_link_list(statuses=WAITING, q=q), PAGE_SIZE).get_page(request.GET.get("wpage"))
    confirmed = Paginator(
        supplier_link_list(statuses=[LINK.CONFIRMED], q=q).order_by("system", "external_name", "id"), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    # A confirmed link opened from the crosswalk list ("change"): shown with its actions above the lists.
    selected = request.GET.get("link", "")
    selected = (
        MasterDataLink.objects.filter(pk=int(selected[:12]), object_type=OBJECT_TYPE, status=LINK.CONFIRMED).first()
        if selected.isdigit()
        else None
    )
    context = {
        "q": q,
        "selected": supplier_links_annotate([selected])[0] if selected else None,
        "waiting": waiting,
        "waiting_rows": supplier_links_annotate(waiting.object_list),
        "confirmed": confirmed,
        "confirmed_rows": supplier_links_annotate(confirmed.object_list),
        "counts": _counts(),
        "params": urlencode({"q": q}) if q else "",
        **_pick_choices(page=True),
    }
    partial = request.htmx and not request.htmx.boosted and request.htmx.target == "lists"
    return render(request, f"{TEMPLATE}#lists" if partial else TEMPLATE, context)


def _counts() -> list[tuple[str, str, int]]:
    counts = supplier_link_counts()
    return [(value, label, counts[value]) for value, label in LINK.choices]


def _link(pk: int) -> MasterDataLink:
    return get_object_or_404(MasterDataLink.objects.select_related("decided_by"), pk=pk, object_type=OBJECT_TYPE)


def _answer(request, link: MasterDataLink, message: str, level: str = "success"):
    if request.htmx:
        row = supplier_links_annotate([_link(link.pk)])[0]
        response = render(
            request, f"{TEMPLATE}#row", {"link": row, "message": message, "level": level, **_pick_choices()}
        )
        response.content += render_to_string(f"{TEMPLATE}#counts", {"counts": _counts(), "oob": True}).encode()
        return trigger_client_event(response, "toast", {"message": message, "level": level})
    (messages.success if level == "success" else messages.error)(request, message)
    query = {"q": link.external_id} if link.status in WAITING else {"link": link.pk}
    return redirect(f"{reverse('suppliers:list')}?{urlencode(query)}#link-{link.pk}")


@require_POST
def supplier_link_confirm_view(request, pk):
    link = _link(pk)
    # The pick form sends a vendor number (maybe blank: refused); the Confirm button sends none.
    code = request.POST["code"][:40] if "code" in request.POST else None
    try:
        link = supplier_link_confirm(
            link=link, actor=request.user, entity_code=request.POST.get("entity", "")[:20] or None, code=code
        )
    except WorkbenchError as exc:
        return _answer(request, link, str(exc), "error")
    n = link.documents_updated
    docs = (
        f" {n} unposted document{'s' if n != 1 else ''} naming it now use{'s' if n == 1 else ''} that vendor."
        if n
        else ""
    )
    return _answer(
        request,
        link,
        f"{system_label(link.system)} supplier '{link.external_name}' is now linked to "
        f"ERP vendor {link.code} ({link.entity_code}).{docs}",
    )


@require_POST
def supplier_link_reject_view(request, pk):
    link = _link(pk)
    try:
        link = supplier_link_reject(link=link, actor=request.user, reason=request.POST.get("reason", "")[:500])
    except WorkbenchError as exc:
        return _answer(request, link, str(exc), "error")
    return _answer(
        request,
        link,
        f"Rejected: '{link.external_name}' is not ERP vendor {link.code}. Pick the right vendor when you know it.",
    )
