from django.apps import AppConfig


class WebConfig(AppConfig):
    """The screens and the API. An app only so that their signal receivers are connected at start-up."""

    name = "workbench.web"
    label = "workbench_web"
    verbose_name = "Workbench screens"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from workbench.web.middleware import SessionTimeoutMiddleware

        # The session clock starts at login, which writes the session anyway: no extra write on the next page.
        user_logged_in.connect(SessionTimeoutMiddleware.login_stamp, dispatch_uid="session-timeout-login-stamp")
