"""A fake of SMSC.ru's ``wait_call`` and ``balance`` on loopback (tests/fake_server.py serves it).

It answers the shapes docs/providers/smsc.rst shows (``phone`` and ``all_phones``, or
``error``/``error_code``), and, once the phone it was given calls the number in time,
posts the handler callback public clients read (``waitcall=1``, ``phone``, ``ts``, and
``md5`` of "phone:ts:secret") to ``callback_url``.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fake_server import FakeServer, Recorded, call_site

LOGIN, PASSWORD, APIKEY = "shop", "pa55-word", "k3y-0f-smsc"
WRONG_LOGIN = {"error": "authorise error", "error_code": 2}


@dataclass
class Wait:
    phone: str  # "7XXXXXXXXXX", as the client sent it
    call_to: str  # "7XXXXXXXXXX", the number to call
    expires_at: float


@dataclass
class FakeSmsc(FakeServer):
    """The fake provider; options may be changed between requests."""

    lifetime: float = 300.0
    secret: str = "h4ndler-s3cret"
    callback_url: str | None = None  # the account's handler, registered by hand
    balance: str = "84.75"
    currency: str | None = "RUR"
    waits: list[Wait] = field(default_factory=list)

    def make_call(self, call_to: str, caller: str, *, lose_webhook: bool = False) -> int | None:
        """Play a call from ``caller`` to ``call_to`` (both E.164); the callback's HTTP status, if any.

        Only a call from the phone given at start, in time, is reported.
        """
        form = self.callback_for(call_to, caller)
        if form is None or self.callback_url is None or lose_webhook:
            return None
        return call_site(self.callback_url, "POST", form)

    def callback_for(self, call_to: str, caller: str) -> list[tuple[str, str]] | None:
        """The callback a call would send, or None when SMSC would send none."""
        with self._lock:
            wait = next((w for w in self.waits if w.call_to == call_to[1:] and w.phone == caller[1:]), None)
        if wait is None or time.monotonic() > wait.expires_at:
            return None
        return self.signed(wait.phone, int(time.time()))

    def signed(self, phone: str, ts: int, secret: str | None = None) -> list[tuple[str, str]]:
        digest = hashlib.md5(f"{phone}:{ts}:{self.secret if secret is None else secret}".encode()).hexdigest()
        return [("waitcall", "1"), ("phone", phone), ("ts", str(ts)), ("md5", digest)]

    def _answer(self, asked: Recorded) -> tuple[int, Any]:
        fields = {**asked.params, **asked.body}
        signed_in = fields.get("apikey") == APIKEY or (fields.get("login"), fields.get("psw")) == (LOGIN, PASSWORD)
        if not signed_in:
            return 200, WRONG_LOGIN
        if asked.action == "sys/wait_call.php":
            return 200, self._wait_call(fields.get("phone", ""))
        if asked.action == "sys/balance.php":
            answer = {"balance": self.balance}
            if self.currency is not None and fields.get("cur") == "1":
                answer["currency"] = self.currency
            return 200, answer
        return 200, {"error": "parameters error", "error_code": 1}

    def _wait_call(self, phone: str) -> dict[str, Any]:
        if not re.fullmatch(r"7[0-9]{10}", phone):
            return {"error": "invalid phone", "error_code": 7}
        call_to = f"7495{random.randint(0, 9_999_999):07d}"
        with self._lock:
            self.waits.append(Wait(phone, call_to, self._expires_at()))
        return {"phone": call_to, "all_phones": [call_to]}
