from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Screens redirect to the login page; the API answers 401/403 itself (DRF, token or session)."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


def _without_nul(query):
    """A copy of a QueryDict with NUL characters taken out of every key and value."""
    clean = query.copy()
    for key in list(clean.keys()):
        values = [v.replace("\x00", "") if isinstance(v, str) else v for v in clean.getlist(key)]
        del clean[key]
        clean.setlist(key.replace("\x00", ""), values)
    clean._mutable = False
    return clean


class NulFreeInputMiddleware:
    """No query or form value reaches a view with a NUL character in it.

    PostgreSQL refuses NUL in text, so one typed (or sent by a hostile client) into a filter, a search
    box or a reason would end as a 500 wherever a view passes it to the database. A NUL carries no
    meaning in any field here, so it is taken out at the door (Django's form fields already refuse it;
    this covers values views read themselves). JSON API bodies are refused by DRF's own validators.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.META.get("QUERY_STRING", "") or "%00" in request.META.get("QUERY_STRING", ""):
            request.GET = _without_nul(request.GET)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            post = request.POST
            if any("\x00" in k or any("\x00" in v for v in post.getlist(k) if isinstance(v, str)) for k in post):
                request.POST = _without_nul(post)
        return self.get_response(request)
