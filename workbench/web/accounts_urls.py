"""Account screens under /accounts/: log in, log out, change a password, and reset one only where mail works.

Without mail (EMAIL_HOST unset, settings.PASSWORD_RESET_ENABLED false) the reset screens are not routed at
all, and the login page says to ask an administrator: a reset form that sends nothing would tell users a
mail is on its way.
"""

from django.conf import settings
from django.contrib.auth import urls as auth_urls
from django.contrib.auth import views as auth_views
from django.urls import path


def account_patterns(*, password_reset: bool) -> list:
    login = auth_views.LoginView.as_view(extra_context={"password_reset": password_reset})
    rest = [p for p in auth_urls.urlpatterns if p.name != "login"]
    if not password_reset:
        rest = [p for p in rest if not p.name.startswith("password_reset")]
    return [path("login/", login, name="login"), *rest]


urlpatterns = account_patterns(password_reset=settings.PASSWORD_RESET_ENABLED)
