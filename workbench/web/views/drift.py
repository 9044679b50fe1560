"""The fixes of reconciliation drift, taken from its item: pull again, accept the ERP's values, re-post.

Technical drift (master data) is the integration engineers' work, posting drift the finance team's,
as the item's code routes it; an admin, who owns master-data configuration, may take them too.
"""

from django.core.exceptions import PermissionDenied
from django.views.decorators.http import require_POST

from workbench import roles
from workbench.errors import WorkbenchError
from workbench.services import reconciliation_items as drift
from workbench.web.scoping import item_or_404, may_work

from .items import _action_response


def _fix(request, pk, action, success):
    item = item_or_404(request, pk)  # outside the account's entities: 404
    if not (may_work(request.user, item) or request.user.has_perm(roles.CONFIGURE)):
        raise PermissionDenied("This drift is not your kind of work.")
    try:
        result = action(item)
    except WorkbenchError as exc:
        return _action_response(request, item, str(exc), "error")
    return _action_response(request, item, success(result) if callable(success) else success)


@require_POST
def item_pull_again(request, pk):
    return _fix(
        request,
        pk,
        lambda item: drift.drift_pull_again(item=item, actor=request.user),
        "Full pull queued. The next reconciliation resolves the item if the drift is gone.",
    )


@require_POST
def item_accept_erp(request, pk):
    return _fix(
        request,
        pk,
        lambda item: drift.drift_accept_erp_values(item=item, actor=request.user),
        lambda n: (
            f"The ERP's values of {n} record{'s' if n != 1 else ''} applied. The next reconciliation confirms it."
        ),
    )


@require_POST
def item_repost(request, pk):
    return _fix(
        request,
        pk,
        lambda item: drift.posting_repost(item=item, actor=request.user),
        lambda write: (
            f"Posting again as {write.payload.get('document_number')}. "
            "The next reconciliation confirms the ERP holds it."
        ),
    )
