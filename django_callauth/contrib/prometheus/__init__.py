"""Prometheus counters of call logins, fed by the app's signals (the ``prometheus`` extra).

Add ``"django_callauth.contrib.prometheus"`` to ``INSTALLED_APPS``; its ``AppConfig.ready``
connects the receivers. The counters live in prometheus_client's default registry: expose
it as the project exposes its other metrics, or route ``views.metrics`` behind the
project's own access control.
"""
