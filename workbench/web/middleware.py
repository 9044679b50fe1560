import time
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.contrib.auth.views import redirect_to_login
from django_htmx.http import HttpResponseClientRedirect

from workbench.services.audit import acting_as


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Screens redirect to the login page; the API answers 401/403 itself (DRF, token or session)."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class AuditActorMiddleware:
    """Configuration changes made while serving this request are recorded as the signed-in person's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with acting_as(getattr(request, "user", None)):
            return self.get_response(request)


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


class SessionTimeoutMiddleware:
    """A signed-in user is logged out SESSION_IDLE_SECONDS after their last request, and SESSION_COOKIE_AGE
    after signing in however busy the session.

    Django's session expiry alone gives one or the other: a cookie age renewed on every request never ends a
    busy session, and one never renewed ends a session mid-task. Two timestamps in the session give both.
    "Last seen" is written at most once a minute, so a page that polls costs one session write a minute.
    An HTMX request whose session ran out gets HX-Redirect to the login page, which brings the user back
    to the page they were on, instead of a login form swapped into a table.
    """

    SEEN_EVERY = 60  # seconds
    STARTED, SEEN = "_session_started", "_session_seen"  # epoch seconds

    def __init__(self, get_response):
        self.get_response = get_response

    @classmethod
    def login_stamp(cls, sender, request, user, **kwargs):
        """user_logged_in receiver (workbench/web/apps.py): both clocks start at login."""
        if request is not None and hasattr(request, "session"):
            request.session[cls.STARTED] = request.session[cls.SEEN] = int(time.time())

    def __call__(self, request):
        if not request.user.is_authenticated or not hasattr(request, "session"):
            return self.get_response(request)
        session, now = request.session, int(time.time())
        started, seen = session.get(self.STARTED, now), session.get(self.SEEN, now)
        if now - seen > settings.SESSION_IDLE_SECONDS or now - started > settings.SESSION_COOKIE_AGE:
            logout(request)
            if request.headers.get("HX-Request") == "true":
                page = urlsplit(request.headers.get("HX-Current-URL", "/"))
                back = page.path + (f"?{page.query}" if page.query else "")
                return HttpResponseClientRedirect(redirect_to_login(back).url)
            return self.get_response(request)  # the login check after this sends the user to log in
        if self.STARTED not in session:
            session[self.STARTED] = now
        if self.SEEN not in session or now - seen >= self.SEEN_EVERY:
            session[self.SEEN] = now
        return self.get_response(request)
