"""A fake of the telefon-ip "Back Calls" API on loopback (tests/fake_server.py serves it).

It answers exactly the shapes docs/providers/telefon-ip.rst shows, and calls the per-flow
webhook like the provider does. Every shape, and those the doc leaves open (the id's type,
how "no call yet" looks), is read by test_providers_telefon_ip.py.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.fake_server import FakeServer, Recorded, call_site

__all__ = ["FakeTelefonIp", "Recorded"]

NOT_FOUND = {"success": False, "error": "id record not found", "data": {}}
PENDING = {"success": False, "error": "call not received", "data": {}}


@dataclass
class Authorisation:
    id: int | str
    auth_phone: str  # "7XXXXXXXXXX", as the provider sends it
    expires_at: float
    webhook: str | None = None
    caller: str | None = None  # "89…"/"79…" once called


@dataclass
class FakeTelefonIp(FakeServer):
    """The fake provider; options may be changed between requests."""

    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    webhook_method: str = "GET"
    balance: Any = 5.0  # get_balance's data.balance, as the provider's page shows it
    price: Any = 0.2

    api_path = "/api/v1/authcalls/"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._auths: dict[str, Authorisation] = {}
        self._next_id = random.randint(100_000, 900_000)

    def make_call(self, call_to: str, caller: str, *, lose_webhook: bool = False) -> int | None:
        """Play a call from ``caller`` to ``call_to`` (both E.164); the webhook's HTTP status, if any.

        ``lose_webhook``: the call is recorded, but the webhook never reaches the site.
        """
        with self._lock:
            auth = next((a for a in self._auths.values() if a.auth_phone == call_to[1:]), None)
            if auth is None or time.monotonic() > auth.expires_at:
                return None
            auth.caller = "8" + caller[2:]
        if auth.webhook is None or lose_webhook:
            return None
        query = urlencode({"success": "True", "phone": auth.caller, "id": auth.id})
        url = auth.webhook + ("&" if "?" in auth.webhook else "?") + query
        return call_site(url, self.webhook_method)

    def _action(self, path: str) -> str:
        return path.removeprefix(f"{self.api_path}{self.token}/").partition("/")[0]

    def _answer(self, asked: Recorded) -> tuple[int, Any]:
        path, params, body = asked.path, asked.params, asked.body
        prefix = f"{self.api_path}{self.token}/"
        if not path.startswith(prefix):
            return 401, {"success": False, "error": "token is invalid", "data": {}}
        action, _, rest = path.removeprefix(prefix).partition("/")
        if action == "reverse_auth_phone_get":
            return self._start(params.get("phone"), None)
        if action == "reverse_auth_phone_post":
            return self._start(body.get("phone"), body.get("webhook") or None)
        if action == "reverse_auth_phone_check":
            return self._check(rest.strip("/"))
        if action == "get_balance":
            data = {"balance": self.balance, "price": self.price, "balance_limit": 0.0}
            return 200, {"success": True, "error": "", "data": data}
        return 404, {"success": False, "error": "unknown action", "data": {}}

    def _start(self, phone: object, webhook: str | None) -> tuple[int, Any]:
        if not (isinstance(phone, str) and re.fullmatch(r"89[0-9]{9}", phone)):
            return 400, {"success": False, "error": "phone is invalid", "data": {}}
        with self._lock:
            self._next_id += 1
            auth_id = self._next_id
            auth = Authorisation(auth_id, self._unused_phone(), self._expires_at(), webhook)
            self._auths[str(auth_id)] = auth
            other_number = "8" + self._unused_phone()[1:]  # the doc's link dials another number
        data = {
            "auth_phone": auth.auth_phone,
            "id": auth_id,
            "url_image": f"{self.base_url}get_qr_image/{auth_id}/",
            "url_link": f"<a href='tel:{other_number}'>Позвони для авторизации</a>",
        }
        return 200, {"success": True, "error": "", "data": data}

    def _check(self, auth_id: str) -> tuple[int, Any]:
        with self._lock:
            auth = self._auths.get(auth_id)
        if auth is None or time.monotonic() > auth.expires_at:
            return 400, NOT_FOUND
        if auth.caller is not None:
            return 200, {
                "success": True,
                "error": "",
                "data": {"phone": auth.caller, "id": auth.id},
            }
        return 200, PENDING

    def _unused_phone(self) -> str:
        taken = {a.auth_phone for a in self._auths.values()}
        while (phone := f"79{random.randint(0, 999_999_999):09d}") in taken:
            pass
        return phone
