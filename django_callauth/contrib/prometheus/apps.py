from __future__ import annotations

from django.apps import AppConfig


class PrometheusConfig(AppConfig):
    name = "django_callauth.contrib.prometheus"
    label = "callauth_prometheus"
    verbose_name = "django-callauth Prometheus metrics"

    def ready(self) -> None:
        # Here and not at import: importing the module (a test, a type check) must not
        # start counting, and ready() runs once per process after the app registry is built.
        from . import metrics

        metrics.connect()
