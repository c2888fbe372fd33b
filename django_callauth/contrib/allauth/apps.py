from django.apps import AppConfig


class CallAuthAllauthConfig(AppConfig):
    name = "django_callauth.contrib.allauth"
    label = "callauth_allauth"
    verbose_name = "Login by phone call, through django-allauth"

    def ready(self) -> None:
        from django_callauth.web.login import set_login_handler

        from .login import login_through_allauth

        # Every login by call from now on goes through allauth's stages (invariant 21).
        set_login_handler(login_through_allauth)
