"""Admin: flows are a read-only audit trail without secrets; phones are edited and normalised."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from django_callauth.guards import webhook_secrets
from django_callauth.models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from django_callauth.providers import balances
from tests.helpers import PHONE, FlowFactory

pytestmark = pytest.mark.django_db

FLOWS = "/admin/callauth/callauthflow/"
PHONES = "/admin/callauth/callauthphone/"
User = get_user_model()


@pytest.fixture
def flow(flow_factory: FlowFactory) -> CallAuthFlow:
    return flow_factory(
        provider="telefon_ip",
        provider_id="122760",
        webhook_secret_hash=webhook_secrets.hash_secret("the-webhook-secret"),
        next_url='/next/"><script>alert(1)</script>',
    )


# -- flows ------------------------------------------------------------------------


def test_flow_list(admin_client: Client, flow: CallAuthFlow) -> None:
    response = admin_client.get(FLOWS)
    assert response.status_code == 200
    page = response.content.decode()
    assert PHONE in page
    assert "+79990001234" in page
    assert flow.webhook_secret_hash not in page


def test_flow_search_by_provider_id(admin_client: Client, flow: CallAuthFlow) -> None:
    assert PHONE in admin_client.get(FLOWS, {"q": "122760"}).content.decode()
    assert PHONE not in admin_client.get(FLOWS, {"q": "999999"}).content.decode()


def test_flow_page_is_read_only_and_hides_the_secret_hash(admin_client: Client, flow: CallAuthFlow) -> None:
    response = admin_client.get(f"{FLOWS}{flow.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert PHONE in page
    assert "122760" in page
    assert flow.webhook_secret_hash not in page
    assert "webhook_secret_hash" not in page
    assert 'name="phone"' not in page  # shown, not editable
    assert 'name="_save"' not in page
    assert response.context["adminform"].form.fields == {}


def test_flow_next_url_is_shown_as_text(admin_client: Client, flow: CallAuthFlow) -> None:
    page = admin_client.get(f"{FLOWS}{flow.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_flow_cannot_be_changed(admin_client: Client, flow: CallAuthFlow) -> None:
    response = admin_client.post(f"{FLOWS}{flow.pk}/change/", {"status": FlowStatus.CONFIRMED, "caller": PHONE})
    assert response.status_code == 403
    flow.refresh_from_db()
    assert (flow.status, flow.caller) == (FlowStatus.PENDING, "")


def test_flows_cannot_be_added(admin_client: Client) -> None:
    assert admin_client.get(f"{FLOWS}add/").status_code == 403
    assert "callauthflow/add/" not in admin_client.get(FLOWS).content.decode()


# -- phones -------------------------------------------------------------------------


# The last three: longer than the 16 characters stored, shorter once normalised.
@pytest.mark.parametrize(
    "typed", ["8 900 123 45 67", "+7 (900) 123-45-67", "8 (900) 123-45-67", " +7 900 123 - 45 - 67 "]
)
def test_add_phone_normalises_it(admin_client: Client, alice: Any, typed: str) -> None:
    response = admin_client.post(f"{PHONES}add/", {"user": alice.pk, "phone": typed})
    assert response.status_code == 302, response.content.decode()
    link = CallAuthPhone.objects.get()
    assert (link.user, link.phone) == (alice, PHONE)


# Not mobile, not a number, empty, too long. The words are test_phones.py's, and the model's
# clean gives them: test_models.py::test_phone_clean_refuses_invalid_numbers_with_the_user_message.
@pytest.mark.parametrize("typed", ["+7 800 555 35 35", "hello", "", "9" * 33])
def test_add_phone_refuses_invalid_numbers(admin_client: Client, alice: Any, typed: str) -> None:
    response = admin_client.post(f"{PHONES}add/", {"user": alice.pk, "phone": typed})
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["phone"]
    assert not CallAuthPhone.objects.exists()


def test_add_phone_refuses_a_phone_of_another_user_in_another_form(admin_client: Client, alice: Any) -> None:
    bob = User.objects.create_user("bob")
    CallAuthPhone.objects.create(user=bob, phone=PHONE)
    response = admin_client.post(f"{PHONES}add/", {"user": alice.pk, "phone": "89001234567"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"phone": ["Phone with this Phone already exists."]}
    assert CallAuthPhone.objects.get().user == bob


def test_change_phone(admin_client: Client, alice: Any) -> None:
    link = CallAuthPhone.objects.create(user=alice, phone=PHONE)
    page = admin_client.get(f"{PHONES}{link.pk}/change/").content.decode()
    assert 'name="phone"' in page
    response = admin_client.post(f"{PHONES}{link.pk}/change/", {"user": alice.pk, "phone": "+7 999 111-22-33"})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.phone == "+79991112233"


def test_phone_list_and_search(admin_client: Client, alice: Any) -> None:
    CallAuthPhone.objects.create(user=alice, phone=PHONE)
    assert PHONE in admin_client.get(PHONES).content.decode()
    assert PHONE in admin_client.get(PHONES, {"q": "9001234567"}).content.decode()


# -- the numbers page -------------------------------------------------------------

DASHBOARD = f"{FLOWS}dashboard/"


def staff(*permissions: str) -> Client:
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("operator", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    client = Client()
    client.force_login(user)
    return client


def test_dashboard_shows_the_numbers_to_staff_who_may_view_flows(flow_factory: FlowFactory) -> None:
    flow_factory(provider="telefon_ip", status=FlowStatus.USED, confirmed_at=timezone.now(), caller=PHONE)
    flow_factory(provider="telefon_ip", status=FlowStatus.FAILED, failure_reason=FailureReason.NO_ACCOUNT)
    flow_factory(provider="sms_ru", first_provider="telefon_ip")

    response = staff("view_callauthflow").get(DASHBOARD)

    assert response.status_code == 200
    board = response.context["board"]
    assert [(entry.provider, entry.total.starts) for entry in board.providers] == [("sms_ru", 1), ("telefon_ip", 2)]
    assert len(board.days) == 14
    page = response.content.decode()
    assert "<svg" in page
    assert "<script" not in page.split('id="content-main"')[1]  # a strict CSP runs no inline script
    assert str(FailureReason.NO_ACCOUNT.label) in page


def test_dashboard_without_flows(admin_client: Client) -> None:
    response = admin_client.get(DASHBOARD)
    assert response.status_code == 200
    assert response.context["board"].providers == []


def test_dashboard_shows_the_cost_when_a_price_is_known(admin_client: Client, flow_factory: FlowFactory) -> None:
    flow_factory(provider="telefon_ip", provider_id="1")
    flow_factory(provider="telefon_ip", provider_id="2")
    cache.set(balances.cache_key("telefon_ip"), {"amount": "9", "currency": "RUB", "price": "0.40", "at": ""})

    page = admin_client.get(DASHBOARD).content.decode()

    assert "0.80 RUB" in page


@pytest.mark.parametrize(("asked", "shown"), [("7", 7), ("0", 1), ("100000", 90), ("many", 14)])
def test_dashboard_window_is_bounded(admin_client: Client, asked: str, shown: int) -> None:
    response = admin_client.get(DASHBOARD, {"days": asked})
    assert response.status_code == 200
    assert len(response.context["board"].days) == shown


def test_dashboard_refuses_staff_without_the_view_permission() -> None:
    assert staff("view_callauthphone").get(DASHBOARD).status_code == 403


def test_dashboard_sends_others_to_the_admin_login(client: Client, alice: Any) -> None:
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(alice)  # not staff
    assert client.get(DASHBOARD).status_code == 302


def test_flow_list_links_to_the_dashboard(admin_client: Client) -> None:
    assert f'href="{DASHBOARD}"' in admin_client.get(FLOWS).content.decode()
