"""Comments and watching on an item's or a document's page (HTMX: the thread re-renders in place)."""

from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from workbench.errors import WorkbenchError
from workbench.models import Comment
from workbench.models.collaboration import COMMENT_MAX
from workbench.selectors.discussion import comment_thread, watchers
from workbench.services.comments import comment_add
from workbench.services.watchers import watch_set
from workbench.web.access import DISCUSS
from workbench.web.scoping import document_or_404, item_or_404


def may_discuss(user) -> bool:
    return any(user.has_perm(p) for p in DISCUSS)


def discussion_context(user, *, item=None, document=None) -> dict:
    """What the discussion card shows: the thread, who watches, and whether this person may post and watch."""
    people = watchers(item=item, document=document)
    return {
        "discussion": {
            "kind": "items" if item is not None else "documents",
            "pk": item.pk if item is not None else document.pk,
            "comments": comment_thread(item=item, document=document),
            "watchers": people,
            "watching": any(u.pk == user.pk for u in people),
            "may_post": may_discuss(user),
            "max": COMMENT_MAX,
        }
    }


def _render(request, *, item=None, document=None, error="", body="", toast=""):
    ctx = discussion_context(request.user, item=item, document=document)
    ctx["discussion"].update(error=error, body=body)
    if not request.htmx:
        return None
    response = render(request, "workbench/_discussion.html#discussion", ctx)
    return trigger_client_event(response, "toast", {"message": toast, "level": "success"}) if toast else response


def _back(item, document):
    return redirect("items:detail", pk=item.pk) if item is not None else redirect("documents:detail", pk=document.pk)


def _comment(request, *, item=None, document=None):
    replaces = None
    if request.POST.get("replaces"):
        target = {"item": item} if item is not None else {"document": document}
        replaces = Comment.objects.filter(pk=_int(request.POST["replaces"]), **target).first()
        if replaces is None:
            return _refused(request, item, document, "That comment is not on this page.", "")
    body = request.POST.get("body", "")
    try:
        comment_add(actor=request.user, body=body, item=item, document=document, replaces=replaces)
    except WorkbenchError as exc:
        return _refused(request, item, document, str(exc), body)
    return _render(request, item=item, document=document, toast="Comment posted.") or _back(item, document)


def _refused(request, item, document, error, body):
    # HTMX: the form again with its error and the text typed (status 200); plain POST: 400 with the words.
    response = _render(request, item=item, document=document, error=error, body=body[: COMMENT_MAX + 1000])
    return response if response is not None else HttpResponseBadRequest(error)


def _int(value) -> int:
    """A row id typed by a client, or 0 (no row) for anything that is not one, a 40-digit number included."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return number if 0 < number < 2**63 else 0


def _watch(request, *, item=None, document=None):
    on = request.POST.get("watch", "1") != "0"
    watch_set(user=request.user, item=item, document=document, on=on)
    toast = "You watch this now: changes reach your inbox." if on else "You no longer watch this."
    return _render(request, item=item, document=document, toast=toast) or _back(item, document)


@require_POST
def item_comment(request, pk):
    return _comment(request, item=item_or_404(request, pk))


@require_POST
def item_watch(request, pk):
    return _watch(request, item=item_or_404(request, pk))


@require_POST
def document_comment(request, pk):
    return _comment(request, document=document_or_404(request, pk))


@require_POST
def document_watch(request, pk):
    return _watch(request, document=document_or_404(request, pk))
