from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CallAuthConfig(AppConfig):
    name = "django_callauth"
    label = "callauth"
    verbose_name = _("Login by phone call")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from . import checks  # noqa: F401  (registers the system checks)
        from .flows import cache, push
        from .guards.reauthentication import record_login
        from .guards.redaction import install_log_redaction
        from .models import flow_changed
        from .providers import current_secrets

        # Every login, by any backend or view, marks the session as recently authenticated.
        user_logged_in.connect(record_login, dispatch_uid="django_callauth.guards.reauthentication.record_login")

        # A poll reads a flow's state from the cache: it follows every change, as it commits.
        flow_changed.connect(cache.changed_receiver, dispatch_uid="django_callauth.flows.cache")
        # And so do the pages that follow it by a stream (under ASGI): told once it commits.
        flow_changed.connect(push.changed_receiver, dispatch_uid="django_callauth.flows.push")

        # urllib3 logs URLs (at DEBUG, and at WARNING on a bad header), and telefon-ip's token is in the path.
        install_log_redaction(current_secrets)
