"""django_callauth.contrib.prometheus: counters fed by the app's signals, connected in ready() only."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import AppConfig
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import path

from django_callauth import signals
from django_callauth.models import CallAuthFlow, FailureReason
from tests.helpers import complete, sandbox_confirm

prometheus_client = pytest.importorskip(
    "prometheus_client", reason="prometheus_client is not installed (pip install django-callauth[prometheus])"
)
from django_callauth.contrib.prometheus import metrics, views  # noqa: E402

pytestmark = pytest.mark.django_db
REGISTRY = prometheus_client.REGISTRY

urlpatterns = [path("metrics", views.metrics)]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total", labels) or 0.0


def connected(signal: Any) -> bool:
    return any(str(key[0]).startswith("callauth_prometheus.") for key, *_ in signal.receivers)


@pytest.fixture
def installed() -> Iterator[None]:
    """The contrib app's ready(), as Django runs it for a project that installs it; undone after."""
    AppConfig.create("django_callauth.contrib.prometheus").ready()
    yield
    for signal, receiver in metrics.RECEIVERS:
        signal.disconnect(receiver, sender=CallAuthFlow, dispatch_uid=f"callauth_prometheus.{receiver.__name__}")


def test_importing_connects_nothing() -> None:
    importlib.reload(importlib.import_module("django_callauth.contrib.prometheus.apps"))
    assert not any(connected(signal) for signal, _ in metrics.RECEIVERS)


def test_ready_connects_each_receiver_once(installed: None) -> None:
    AppConfig.create("django_callauth.contrib.prometheus").ready()  # a second ready() adds nothing
    for signal, _ in metrics.RECEIVERS:
        assert sum(str(key[0]).startswith("callauth_prometheus.") for key, *_ in signal.receivers) == 1


def test_a_login_counts_started_confirmed_and_logged_in(installed: None, client: Client) -> None:
    names = ["callauth_flows_started", "callauth_flows_confirmed", "callauth_logins"]
    before = [value(name, provider="sandbox") for name in names]
    sandbox_confirm(client)
    assert complete(client).status_code == 200
    after = [value(name, provider="sandbox") for name in names]
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]


def test_a_failed_login_counts_its_reason(installed: None, client: Client, settings: Any) -> None:
    settings.CALLAUTH_SIGNUP = False  # nobody has PHONE: no account
    before = value("callauth_flows_failed", provider="sandbox", reason=FailureReason.NO_ACCOUNT)
    sandbox_confirm(client)
    complete(client)
    assert value("callauth_flows_failed", provider="sandbox", reason=FailureReason.NO_ACCOUNT) == before + 1


def test_failovers_and_rate_limits_are_counted(installed: None) -> None:
    before = (
        value("callauth_failovers", failed="telefon_ip", provider="sms_ru"),
        value("callauth_rate_limited", scope="phone"),
    )
    signals.send_robust(
        signals.failed_over, flow=None, request=None, failed="telefon_ip", provider="sms_ru", error=None
    )
    signals.send_robust(signals.rate_limited, request=None, scope="phone")
    after = (
        value("callauth_failovers", failed="telefon_ip", provider="sms_ru"),
        value("callauth_rate_limited", scope="phone"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


@pytest.mark.urls(__name__)
def test_the_metrics_view_is_for_staff_who_may_view_flows(client: Client, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    client.force_login(user)
    assert client.get("/metrics").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_callauthflow"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"callauth_flows_started_total" in response.content
