"""The API's one permission class: the URL table of `workbench/web/access.py`, after DRF authenticated."""

from rest_framework.permissions import BasePermission

from workbench.web.access import allowed


class TablePermission(BasePermission):
    """The same table for the API, after DRF has authenticated the token or session."""

    message = "Your role does not include this action."

    def has_permission(self, request, view):
        name = request.resolver_match.view_name if request.resolver_match else ""
        verdict = allowed(request.user, name, request.method)
        return bool(verdict)  # a method without a row is refused too (fail closed)
