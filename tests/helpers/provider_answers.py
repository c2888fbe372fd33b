"""telefon-ip as ``responses`` plays it: its token and URLs, its answers, what the app asked it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import responses
from django.test import Client

from .constants import PHONE_FOR_PROVIDER

TOKEN = "4ea13fbf-f5a3-4084-8b01-9733cd6fd0b1"  # the shape of a real token (a UUID)
BASE = "https://api.telefon-ip.ru/api/v1/authcalls/"
API = f"{BASE}{TOKEN}/"
START_POST = API + "reverse_auth_phone_post"
START_GET = API + "reverse_auth_phone_get"
PROVIDER_ID = 122760
OTHER_PROVIDER_ID = 555001
AUTH_PHONE = "79644115786"  # the number to call, as the provider sends it
CALL_TO = "+79644115786"


def start_answer(provider_id: int = PROVIDER_ID, **data: Any) -> dict[str, Any]:
    """telefon-ip's answer to a start, with its third-party HTML fields (never to be shown)."""
    return {
        "success": True,
        "error": "",
        "data": {
            "auth_phone": AUTH_PHONE,
            "id": provider_id,
            "url_image": "https://api.telefon-ip.ru/api/v1/authcalls/get_qr_image/2841621/",
            "url_link": "<a href='tel:89644078713'>Позвони для авторизации</a>",
            **data,
        },
    }


def check_answer(phone: str | None = PHONE_FOR_PROVIDER, provider_id: int = PROVIDER_ID) -> dict[str, Any]:
    """telefon-ip's answer to a check: a call from ``phone``, or none yet when it is None."""
    if phone is None:
        return {"success": False, "error": "call not received", "data": {}}
    return {"success": True, "error": "", "data": {"phone": phone, "id": provider_id}}


def check_url(provider_id: int = PROVIDER_ID) -> str:
    return API + f"reverse_auth_phone_check/{provider_id}/"


def check_calls(api: responses.RequestsMock) -> list[Any]:
    """The checks the app asked telefon-ip for, in order."""
    return [call for call in api.calls if "/reverse_auth_phone_check/" in call.request.url]


def webhook_path(api: responses.RequestsMock, index: int = 0) -> str:
    """The path of the webhook URL the app gave telefon-ip in its ``index``-th start."""
    starts = [call for call in api.calls if call.request.url.endswith("/reverse_auth_phone_post")]
    return urlsplit(json.loads(starts[index].request.body)["webhook"]).path


def webhook_secret(path: str) -> str:
    """The per-flow secret in a webhook path."""
    return path.rstrip("/").split("/")[-1]


def call_webhook(path: str, method: str = "get", **params: str | None) -> Any:
    """telefon-ip calling the webhook at ``path``: a call from PHONE to flow PROVIDER_ID unless ``params`` say
    otherwise (None leaves a parameter out)."""
    query = {"success": "True", "phone": PHONE_FOR_PROVIDER, "id": str(PROVIDER_ID), **params}
    query = {key: value for key, value in query.items() if value is not None}
    return getattr(Client(), method)(path + "?" + urlencode(query))
