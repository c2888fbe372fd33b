"""A fake of sms.ru's callcheck API on loopback (tests/fake_server.py serves it).

It answers the shapes docs/providers/sms-ru.rst shows (``status``/``status_code`` on every answer,
``check_status`` "400"/"401"/"402"), with switches for the types public clients disagree
on, and posts the account-wide callback (``data[]`` entries and their ``hash``, answered
``100``) to ``callback_url`` like sms.ru does once a call came from the phone it was given.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fake_server import FakeServer, Recorded, call_site

WRONG_API_ID = {"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"}


@dataclass
class Check:
    check_id: str
    phone: str  # "7XXXXXXXXXX", as the client sent it
    call_phone: str  # "7800XXXXXXX", the number to call
    expires_at: float
    confirmed: bool = False


@dataclass
class FakeSmsRu(FakeServer):
    """The fake provider; options may be changed between requests."""

    api_id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    lifetime: float = 300.0
    #: The documented types are status_code 100 and check_status "401"; flipped: "100" and 401.
    flip_types: bool = False
    callback_url: str | None = None  # the account's callback, registered by hand
    balance: Any = 4762.58  # my/balance's answer

    def __post_init__(self) -> None:
        super().__post_init__()
        self._checks: dict[str, Check] = {}

    def make_call(self, call_to: str, caller: str, *, lose_webhook: bool = False) -> int | None:
        """Play a call from ``caller`` to ``call_to`` (both E.164); the callback's HTTP status, if any.

        sms.ru only confirms a call from the phone it was given: from another phone nothing
        is recorded. ``lose_webhook``: confirmed, but the callback never reaches the site.
        """
        with self._lock:
            check = next((c for c in self._checks.values() if c.call_phone == call_to[1:]), None)
            if check is None or time.monotonic() > check.expires_at or check.phone != caller[1:]:
                return None
            check.confirmed = True
        if self.callback_url is None or lose_webhook:
            return None
        return call_site(self.callback_url, "POST", self.callback_form(check.check_id))

    def callback_form(self, *check_ids: str, status: int = 401) -> list[tuple[str, str]]:
        """The callback's form for ``check_ids``: one ``data`` entry each, signed with the ``hash``
        public clients check, sha256 of the api_id followed by every entry in order."""
        entries = [f"callcheck_status\n{check_id}\n{status}\n{int(time.time())}" for check_id in check_ids]
        keys = ["data[]"] * len(entries)  # every spelling sms.ru uses: test_providers_sms_ru.py
        digest = hashlib.sha256((self.api_id + "".join(entries)).encode()).hexdigest()
        return [*zip(keys, entries, strict=True), ("hash", digest)]

    def _answer(self, asked: Recorded) -> tuple[int, Any]:
        fields = {**asked.params, **asked.body}  # sms.ru takes GET and POST alike
        if fields.get("api_id") != self.api_id:
            return 200, WRONG_API_ID
        action = asked.action
        if action == "callcheck/add":
            return 200, self._add(fields.get("phone", ""))
        if action == "callcheck/status":
            return 200, self._status(fields.get("check_id", ""))
        if action == "my/balance":
            return 200, {"status": "OK", "status_code": self._code(100), "balance": self.balance}
        return 200, {"status": "ERROR", "status_code": 211, "status_text": "Метод не найден"}

    def _code(self, code: int) -> int | str:
        """A status_code as the documented int, or as text when the types are flipped."""
        return str(code) if self.flip_types else code

    def _add(self, phone: str) -> dict[str, Any]:
        if not re.fullmatch(r"79[0-9]{9}", phone):
            return {"status": "ERROR", "status_code": self._code(202), "status_text": "Неправильно указан номер"}
        with self._lock:
            taken = {c.call_phone for c in self._checks.values()}
            while (call_phone := f"7800{random.randint(0, 9_999_999):07d}") in taken:
                pass
            check = Check(f"{random.randint(100_000, 999_999)}-{len(self._checks) + 1}", phone, call_phone, 0)
            check.expires_at = self._expires_at()
            self._checks[check.check_id] = check
        pretty = f"+7 ({call_phone[1:4]}) {call_phone[4:7]}-{call_phone[7:]}"
        return {
            "status": "OK",
            "status_code": self._code(100),
            "check_id": check.check_id,
            "call_phone": call_phone,
            "call_phone_pretty": pretty,
            "call_phone_html": f'<a href="callto:{call_phone}">{pretty}</a>',
        }

    def _status(self, check_id: str) -> dict[str, Any]:
        with self._lock:
            check = self._checks.get(check_id)
        if check is None or (time.monotonic() > check.expires_at and not check.confirmed):
            status, text = 402, "Истекло время, отведенное для проверки, либо указан неверный check_id"
        elif check.confirmed:
            status, text = 401, "Авторизация подтверждена"
        else:
            status, text = 400, "Номер пока не подтвержден"
        return {
            "status": "OK",
            "status_code": self._code(100),
            "check_status": status if self.flip_types else str(status),
            "check_status_text": text,
        }
