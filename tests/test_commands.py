"""Management commands: ``callauth_simulate_call`` and ``callauth_cleanup``."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from django_callauth.models import CallAuthFlow, FailureReason, FlowStatus
from django_callauth.providers import balances
from tests.fake_sms_ru import FakeSmsRu
from tests.fake_telefon_ip import FakeTelefonIp
from tests.helpers import OTHER_PHONE as OTHER
from tests.helpers import PHONE, SANDBOX_CALL_TO, BrokenCache, FlowFactory, SignalLog, snapshot

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture(autouse=True)
def sandbox(settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = "sandbox"
    settings.CALLAUTH_TTL = 120
    settings.CALLAUTH_COMPLETE_WINDOW = 300
    settings.CALLAUTH_CLEANUP_AFTER_DAYS = 30


# -- callauth_simulate_call -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fields", "caller", "status", "reason"),
    [
        *[
            ([number], {}, PHONE, FlowStatus.CONFIRMED, "")
            for number in [SANDBOX_CALL_TO, "89990001234", "79990001234", "+7 999 000-12-34"]
        ],
        ([SANDBOX_CALL_TO, "--caller", "8 900 765-43-21"], {}, OTHER, FlowStatus.FAILED, FailureReason.PHONE_MISMATCH),
        ([SANDBOX_CALL_TO], {"age": timedelta(seconds=121)}, PHONE, FlowStatus.EXPIRED, ""),
    ],
    ids=["e164", "8-prefix", "7-prefix", "typed", "another-caller", "too-late"],
)
def test_simulate_call_decides_the_waiting_flow(
    flow_factory: FlowFactory, args: list[str], fields: dict[str, Any], caller: str, status: str, reason: str
) -> None:
    flow = flow_factory(**fields)
    assert (
        run("callauth_simulate_call", *args) == f"Call to {SANDBOX_CALL_TO} from {caller}: the login is now {status}.\n"
    )
    flow.refresh_from_db()
    assert (flow.status, flow.failure_reason) == (status, reason)
    assert flow.caller == ("" if status == FlowStatus.EXPIRED else caller)


# Which flows a call reaches: test_flows.py::test_simulate_call_reaching_no_live_sandbox_flow_writes_nothing.
def test_simulate_call_reaching_no_waiting_sandbox_flow_writes_nothing(flow_factory: FlowFactory) -> None:
    number = "+79990009999"
    flow_factory()
    before = snapshot()
    with pytest.raises(CommandError) as excinfo:
        run("callauth_simulate_call", number)
    assert str(excinfo.value) == f"No login is waiting for a call to {number}."
    assert snapshot() == before


@pytest.mark.parametrize("number", ["hello", "+12025550123"])
def test_simulate_call_to_something_that_is_not_a_number(number: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        run("callauth_simulate_call", number)
    assert str(excinfo.value) == f"{number!r} is not a phone number."


def test_simulate_call_with_an_invalid_caller(flow_factory: FlowFactory) -> None:
    flow = flow_factory()
    with pytest.raises(CommandError) as excinfo:
        run("callauth_simulate_call", SANDBOX_CALL_TO, "--caller", "+7 800 555 35 35")
    assert str(excinfo.value) == "--caller: Only Russian mobile numbers (+7 9XX …) can log in by phone call."
    flow.refresh_from_db()
    assert flow.status == FlowStatus.PENDING


def test_simulate_call_refuses_a_real_provider(settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_PROVIDER = "django_callauth.providers.telefon_ip.TelefonIpProvider"
    settings.CALLAUTH_TELEFON_IP_TOKEN = "token"
    flow = flow_factory()
    with pytest.raises(CommandError) as excinfo:
        run("callauth_simulate_call", SANDBOX_CALL_TO)
    assert str(excinfo.value) == "CALLAUTH_PROVIDER is not 'sandbox': real calls cannot be simulated."
    flow.refresh_from_db()
    assert flow.status == FlowStatus.PENDING


# -- callauth_cleanup -----------------------------------------------------------------


def test_cleanup_deletes_only_old_flows(flow_factory: FlowFactory) -> None:
    old = [flow_factory(age=timedelta(days=31)), flow_factory(age=timedelta(days=400), status=FlowStatus.USED)]
    kept = [flow_factory(age=timedelta(days=29)), flow_factory()]
    assert run("callauth_cleanup") == "Deleted 2 flow(s) older than 30 day(s).\n"
    assert set(CallAuthFlow.objects.values_list("pk", flat=True)) == {f.pk for f in kept}
    assert not CallAuthFlow.objects.filter(pk__in=[f.pk for f in old]).exists()


def test_cleanup_days_option_wins_over_the_setting(flow_factory: FlowFactory) -> None:
    flow_factory(age=timedelta(days=3))
    assert run("callauth_cleanup", "--days", "2") == "Deleted 1 flow(s) older than 2 day(s).\n"
    assert not CallAuthFlow.objects.exists()


def test_cleanup_never_deletes_a_flow_that_may_still_finish(flow_factory: FlowFactory) -> None:
    # Confirmed 5 minutes ago: the browser may still finish within COMPLETE_WINDOW.
    live = flow_factory(age=timedelta(seconds=400), status=FlowStatus.CONFIRMED)
    gone = flow_factory(age=timedelta(seconds=421))
    assert run("callauth_cleanup", "--days", "0") == "Deleted 1 flow(s) older than 0 day(s).\n"
    assert list(CallAuthFlow.objects.all()) == [live]
    assert not CallAuthFlow.objects.filter(pk=gone.pk).exists()


def test_cleanup_refuses_a_negative_age(settings: Any, flow_factory: FlowFactory) -> None:
    flow_factory()
    with pytest.raises(CommandError) as excinfo:
        run("callauth_cleanup", "--days", "-1")
    assert str(excinfo.value) == "The age must be 0 days or more, not -1."
    settings.CALLAUTH_CLEANUP_AFTER_DAYS = -3
    with pytest.raises(CommandError, match="^CALLAUTH_CLEANUP_AFTER_DAYS must be an int of days, at least 0; it is -3"):
        run("callauth_cleanup")
    assert CallAuthFlow.objects.count() == 1


def test_cleanup_dry_run_deletes_nothing(flow_factory: FlowFactory) -> None:
    flow_factory(age=timedelta(days=31))
    flow_factory(age=timedelta(days=32))
    flow_factory()
    assert run("callauth_cleanup", "--dry-run") == "2 flow(s) older than 30 day(s) would be deleted.\n"
    assert CallAuthFlow.objects.count() == 3


def test_cleanup_keeps_the_users(django_user_model: Any, flow_factory: FlowFactory) -> None:
    user = django_user_model.objects.create_user("alice")
    flow_factory(age=timedelta(days=31), user=user, status=FlowStatus.USED)
    run("callauth_cleanup")
    assert django_user_model.objects.filter(pk=user.pk).exists()


def test_cleanup_deletes_in_batches_each_its_own_statement(
    django_assert_num_queries: Any, flow_factory: FlowFactory
) -> None:
    for days in range(31, 38):
        flow_factory(age=timedelta(days=days))
    kept = flow_factory()
    # Three batches of 3, 3 and 1, each one DELETE with its own subselect; the short one is the last.
    with django_assert_num_queries(3):
        assert run("callauth_cleanup", "--batch-size", "3") == "Deleted 7 flow(s) older than 30 day(s).\n"
    assert list(CallAuthFlow.objects.all()) == [kept]


def test_cleanup_refuses_a_batch_size_below_one() -> None:
    with pytest.raises(CommandError, match="The batch size must be 1 or more, not 0."):
        run("callauth_cleanup", "--batch-size", "0")


# -- callauth_providers ---------------------------------------------------------------


@pytest.fixture
def both(settings: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu) -> Any:
    settings.CALLAUTH_PROVIDER = ["telefon_ip", "sms_ru", "sandbox"]
    settings.CALLAUTH_TELEFON_IP_TOKEN = fake_telefon_ip.token
    settings.CALLAUTH_TELEFON_IP_URL = fake_telefon_ip.base_url
    settings.CALLAUTH_SMS_RU_API_ID = fake_sms_ru.api_id
    settings.CALLAUTH_SMS_RU_URL = fake_sms_ru.base_url
    return settings


def providers_report(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("callauth_providers", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_providers_reports_each_provider(both: Any, flow_factory: FlowFactory) -> None:
    flow_factory(provider="telefon_ip", provider_id="1")
    flow_factory(provider="telefon_ip", provider_id="2", age=timedelta(hours=23))
    flow_factory(provider="telefon_ip", provider_id="3", age=timedelta(hours=25))  # not the last day
    flow_factory(provider="telefon_ip", provider_id="")  # never started: not billed
    out, error = providers_report()
    assert error is None
    assert out.splitlines() == [
        "telefon_ip: reachable, balance 5.0 RUB; price 0.2; last 24 h: 2 billed start(s), cost 0.4",
        "sms_ru: reachable, balance 4762.58 RUB; last 24 h: 0 billed start(s)",
        "sandbox: no balance method; last 24 h: 0 billed start(s)",
    ]


def test_providers_json_and_exit_status_when_low(both: Any, fake_telefon_ip: FakeTelefonIp, sent: SignalLog) -> None:
    both.CALLAUTH_LOW_BALANCE = {"telefon_ip": 100, "sms_ru": 50}
    out, error = providers_report("--json")
    assert error is not None and error.returncode == 1
    report = json.loads(out)
    assert report["ok"] is False
    telefon_ip, sms_ru, sandbox = report["providers"]
    assert telefon_ip == {
        "provider": "telefon_ip",
        "reachable": True,
        "error": "",
        "balance": "5.0",
        "currency": "RUB",
        "price": "0.2",
        "starts_last_day": 0,
        "cost_last_day": "0.0",
        "threshold": "100",
        "low": True,
    }
    assert (sms_ru["low"], sms_ru["threshold"], sms_ru["price"]) == (False, "50", None)
    assert (sandbox["reachable"], sandbox["balance"]) == (None, None)
    [low] = [e.kwargs for e in sent.of("provider_balance_low")]
    assert (low["provider"], low["balance"].amount, low["threshold"]) == ("telefon_ip", Decimal("5.0"), 100)
    assert balances.known_low(["telefon_ip", "sms_ru"]) == {"telefon_ip"}  # what starts now pass by


def test_providers_exit_status_when_unreachable(both: Any, fake_sms_ru: FakeSmsRu) -> None:
    both.CALLAUTH_LOW_BALANCE = {"telefon_ip": Decimal("4.99")}
    fake_sms_ru.stop()
    out, error = providers_report()
    assert error is not None and error.returncode == 1 and "sms_ru" in str(error)
    assert "sms_ru: UNREACHABLE (sms.ru cannot be reached.)" in out
    assert (
        "telefon_ip: reachable, balance 5.0 RUB; price 0.2; last 24 h: 0 billed start(s), cost 0.0; threshold 4.99: ok"
        in out
    )
    assert fake_sms_ru.api_id not in out


def test_providers_still_reports_when_the_cache_fails(both: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balances, "_cache", BrokenCache)
    out, error = providers_report("--json")
    assert error is None and json.loads(out)["ok"] is True


@pytest.mark.parametrize(
    "overrides",
    [{"CALLAUTH_LOW_BALANCE": {"telefon_ip": "100"}}, {"CALLAUTH_PROVIDER": "no.such.Provider"}],
    ids=["wrong-threshold", "wrong-provider"],
)
def test_providers_fails_clearly_on_wrong_settings(both: Any, overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        setattr(both, name, value)
    with pytest.raises(CommandError):
        call_command("callauth_providers", stdout=StringIO())
