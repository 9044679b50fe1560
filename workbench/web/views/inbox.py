"""A person's inbox: what the workbench told them (mentions, watched items, alerts), and how to be mailed."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from workbench.errors import WorkbenchError
from workbench.models import Notification, NotificationPreference
from workbench.selectors.discussion import email_preference, inbox_list, inbox_unread_count
from workbench.services.email_digest import notification_preference_set
from workbench.services.notifications import notifications_mark_read

PAGE_SIZE = 50


@vary_on_headers("HX-Request")
def inbox_page(request):
    page = Paginator(inbox_list(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    ctx = {"page": page, "unread": inbox_unread_count(request.user)}
    if request.htmx and not request.htmx.boosted:
        return render(request, "workbench/inbox.html#list", ctx)
    return render(request, "workbench/inbox.html", ctx)


@require_POST
def inbox_read(request, pk):
    message = get_object_or_404(Notification, pk=pk, recipient=request.user)  # another's: 404
    notifications_mark_read(user=request.user, ids=[message.pk])
    if not request.htmx:
        return redirect("inbox:list")
    message.refresh_from_db()
    return render(
        request, "workbench/inbox.html#row", {"m": message, "unread": inbox_unread_count(request.user), "oob": True}
    )


@require_POST
def inbox_read_all(request):
    n = notifications_mark_read(user=request.user)
    if not request.htmx:
        messages.success(request, f"{n} message{'s' if n != 1 else ''} marked read.")
        return redirect("inbox:list")
    return inbox_page(request)


def inbox_settings(request):
    error = ""
    if request.method == "POST":
        try:
            notification_preference_set(user=request.user, email=request.POST.get("email", ""))
        except WorkbenchError as exc:
            error = str(exc)
        else:
            messages.success(request, "Saved: " + NotificationPreference.Email(request.POST["email"]).label + ".")
            return redirect("inbox:settings")
    return render(
        request,
        "workbench/inbox_settings.html",
        {
            "choices": NotificationPreference.Email.choices,
            "current": email_preference(request.user),
            "error": error,
            "has_address": bool(request.user.email),
        },
        status=400 if error else 200,
    )
