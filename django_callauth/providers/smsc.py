"""The SMSC.ru ``wait_call`` client: the user calls a number SMSC hands out, SMSC tells the site.

``sys/wait_call.php`` answers the number to call (``phone``). Public material shows no
status request for it: the result reaches the site only as the account's handler callback
(registered by hand in the SMSC account), a form with ``waitcall=1``, the caller's
``phone``, ``ts`` and ``md5`` = md5("phone:ts:secret"). So the callback is the one result
channel, and it is believed only when its signature holds with
``CALLAUTH_SMSC_CALLBACK_SECRET`` and it came after our start: then it is recorded in the
shared cache, where ``check`` reads it. docs/providers/smsc.rst says what is documented and
what is only seen in public clients.

Credentials (login and password, or an API key) are POSTed in the form body, never in a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django.core.cache import caches
from django.core.checks import CheckMessage, Error
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.debug import sensitive_variables

from .. import errors, signals
from ..conf import BOOLEAN, Setting, app_settings, text
from ..models import CallAuthFlow
from ..phones import parse_provider_phone
from . import answers, http
from .base import (
    CallAuthProvider,
    CallReport,
    ProviderBalance,
    ProviderConfigurationError,
    ProviderError,
    ProviderMalformedAnswer,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    StartedCall,
    WebhookStyle,
)

logger = logging.getLogger("django_callauth")

DEFAULT_URL = "https://smsc.ru/"
DEFAULT_BACKUP_URL = "https://www2.smsc.ru/"
LOGIN = Setting[str]("SMSC_LOGIN", "", text(none=True), "Your SMSC login (with CALLAUTH_SMSC_PASSWORD).")
PASSWORD = Setting[str]("SMSC_PASSWORD", "", text(none=True), "Your SMSC password.", secret=True)
APIKEY = Setting[str]("SMSC_APIKEY", "", text(none=True), "An SMSC API key (not login+password).", secret=True)
URL = Setting[str]("SMSC_URL", DEFAULT_URL, text(), "The SMSC API host.")
BACKUP_URL = Setting[str](
    "SMSC_BACKUP_URL", DEFAULT_BACKUP_URL, text(none=True), "SMSC's backup host, asked only by safe requests."
)
CALLBACK = Setting[bool]("SMSC_CALLBACK", True, BOOLEAN, "Your SMSC account sends its handler callback here.")
CALLBACK_SECRET = Setting[str](
    "SMSC_CALLBACK_SECRET", "", text(none=True), "The secret SMSC signs its handler callback with.", secret=True
)

#: SMSC's ``error_code`` values (its error table), and what each says about the request.
_CREDENTIALS_REFUSED = 2  # wrong login/password or API key, or an IP not on the account's list
_NO_MONEY = 3
_IP_BLOCKED = 4  # too many errors or identical requests: blocked for some minutes
_TOO_MANY_REQUESTS = 9  # concurrent or repeated requests
#: Seconds a callback's ``ts`` may precede our start (clocks differ) and still count.
_CLOCK_SKEW = 30
_CACHE_PREFIX = "callauth:smsc:"
#: Seconds a flow must have left to free its phone when it ends: clocks of processes differ.
_RELEASE_MARGIN = 5


def to_provider_format(phone: str) -> str:
    """``+79001234567`` → ``79001234567``, the form SMSC takes."""
    return phone[1:]


def provider_id_for(phone: str) -> str:
    """Our id of an authorisation of ``phone`` (E.164): SMSC names none, its callback names the phone.

    A digest, so no full phone number sits in the id column or in log lines.
    """
    return "s" + hashlib.sha256(phone.encode()).hexdigest()[:40]


def _cache() -> Any:
    return caches[app_settings.CACHE]


class SmscProvider(CallAuthProvider):
    """Numbers to call from SMSC.ru's ``wait_call``; results from its signed handler callback."""

    name = "smsc"
    webhook_style = WebhookStyle.ACCOUNT
    lifetime = 300  # not documented in what we could read: see docs/providers/smsc.rst
    required_settings: ClassVar[dict[str, str]] = {
        "CALLAUTH_SMSC_CALLBACK_SECRET": "Set the secret your SMSC account signs its handler callback with"
    }
    settings = (LOGIN, PASSWORD, APIKEY, URL, BACKUP_URL, CALLBACK, CALLBACK_SECRET)

    @sensitive_variables("password", "apikey", "callback_secret")
    def __init__(
        self,
        *,
        login: str = "",
        password: str = "",
        apikey: str = "",
        callback_secret: str = "",
        base_url: str = DEFAULT_URL,
        backup_url: str = "",
        awaits_callback: bool = True,
        timeout: tuple[float, float] = http.DEFAULT_TIMEOUT,
        deadline: float = http.DEFAULT_DEADLINE,
    ) -> None:
        self._login = login
        self._password = password
        self._apikey = apikey
        self._callback_secret = callback_secret
        self._base_url = _slash(base_url)
        self._backup_url = _slash(backup_url) if backup_url else ""
        self.awaits_callback = awaits_callback
        self._secrets = tuple(secret for secret in (password, apikey, callback_secret) if secret)
        self._http = http.HttpClient(
            vendor="SMSC",
            credential="login or API key",
            url_setting="CALLAUTH_SMSC_URL",
            secrets=self._secrets,
            timeout=timeout,
            deadline=deadline,
        )

    @classmethod
    def from_settings(cls) -> SmscProvider:
        return cls(
            login=LOGIN.value(),
            password=PASSWORD.value(),
            apikey=APIKEY.value(),
            callback_secret=CALLBACK_SECRET.value(),
            base_url=URL.value(),
            backup_url=BACKUP_URL.value(),
            awaits_callback=CALLBACK.value(),
        )

    @classmethod
    def secrets(cls) -> Sequence[str]:
        return (PASSWORD.value(), APIKEY.value(), CALLBACK_SECRET.value())

    @classmethod
    def check_settings(cls) -> list[CheckMessage]:
        if APIKEY.value() or (LOGIN.value() and PASSWORD.value()):
            return []
        return [
            Error(
                "CALLAUTH_SMSC_APIKEY is empty, and so is CALLAUTH_SMSC_LOGIN or CALLAUTH_SMSC_PASSWORD.",
                hint="Set an SMSC API key, or your SMSC login and password.",
                id="callauth.E003",
            )
        ]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._base_url}>"

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        """A number to call for ``phone``; refused (``SmscPhoneBusy``) while another SMSC flow for it lives.

        SMSC's callback names only the caller, so two live flows for one phone would both be
        confirmed by one call: one person's call would log in whoever else started a flow for
        her phone. Hence one live flow per phone, site-wide: an atomic ``add`` in the shared
        cache, held for the flow's lifetime (docs/providers/smsc.rst).
        """
        provider_id = provider_id_for(phone)
        live_key = _CACHE_PREFIX + "live:" + provider_id
        seconds = self.flow_seconds()
        if not _cache().add(live_key, int(time.time()), seconds):
            logger.warning("SMSC start %s: another live flow has this phone; refused", provider_id)
            raise SmscPhoneBusy("Another live SMSC flow has this phone.")
        try:
            # Never retried, never sent to the backup host: SMSC may have handed out a number already.
            fields = self._call(self._base_url, "sys/wait_call.php", {"phone": to_provider_format(phone)}, None)
            started = answers.started_call("SMSC", provider_id, fields.get("phone"), ("id", "phone"), ())
        except ProviderError:
            _cache().delete(live_key)  # no number was shown to anyone: nobody can call for this flow
            raise
        # A call an ended flow saw confirms no later one.
        _cache().delete(_CACHE_PREFIX + "seen:" + provider_id)
        # What the callback is checked against: it must come after this start (no replay).
        _cache().set(_CACHE_PREFIX + "started:" + provider_id, int(time.time()), seconds)
        return started

    def flow_seconds(self) -> int:
        """How long a flow of ours lives (``flows.start.ttl_for``): ``CALLAUTH_TTL``, at most ``lifetime``."""
        return min(app_settings.TTL or self.lifetime, self.lifetime)

    def check(self, provider_id: str) -> CallReport:
        """The call a verified callback recorded for ``provider_id``, else pending (SMSC has no status request)."""
        if answers.provider_id(provider_id) != provider_id:
            raise ProviderMalformedAnswer("The stored SMSC id is not a valid id.")
        caller = _cache().get(_CACHE_PREFIX + "seen:" + provider_id)
        if not isinstance(caller, str):
            return CallReport(caller=None, provider_id=provider_id)
        logger.info("SMSC check %s: a signed callback reported the call", provider_id)
        return CallReport(caller=caller, provider_id=provider_id)

    def parse_callback(self, request: HttpRequest) -> list[CallReport]:
        """A ``waitcall`` callback, when its ``md5`` holds and it came after our start; else nothing.

        A verified one is recorded for ``check``: the flow still decides (same phone, in time).
        """
        form = _callback_form(request)
        if form.get("waitcall") != "1":
            return []
        phone = parse_provider_phone("+" + form.get("phone", "").strip().lstrip("+"))
        ts = form.get("ts", "").strip()
        if phone is None or not (ts.isascii() and ts.isdigit()):
            logger.warning("SMSC callback: unreadable phone or ts; ignored")
            return []
        if not self._signature_holds(form.get("phone", "").strip(), ts, form.get("md5", "")):
            return []
        provider_id = provider_id_for(phone)
        started_at = _cache().get(_CACHE_PREFIX + "started:" + provider_id)
        if not isinstance(started_at, int) or int(ts) < started_at - _CLOCK_SKEW:
            logger.warning("SMSC callback %s: no live start of ours, or older than it; ignored", provider_id)
            return []
        _cache().set(_CACHE_PREFIX + "seen:" + provider_id, phone, self.lifetime)
        return [CallReport(caller=phone, provider_id=provider_id)]

    @sensitive_variables("expected")
    def _signature_holds(self, phone: str, ts: str, given: str) -> bool:
        """Whether ``md5`` is md5("phone:ts:secret") (the shape public clients check), in constant time."""
        if not self._callback_secret:
            logger.error("SMSC callback: CALLAUTH_SMSC_CALLBACK_SECRET is empty; no callback is believed")
            return False
        expected = hashlib.md5(f"{phone}:{ts}:{self._callback_secret}".encode()).hexdigest()
        if hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            return True
        logger.warning("SMSC callback: its md5 is wrong (not signed with our secret); ignored")
        return False

    def balance(self) -> ProviderBalance:
        """``sys/balance.php`` with the currency; safe to repeat, so the backup host is asked on failure."""
        fields = self._call(self._base_url, "sys/balance.php", {"cur": "1"}, self._backup_url)
        try:
            amount = Decimal(str(fields.get("balance")))
        except InvalidOperation:
            amount = Decimal("NaN")
        currency = fields.get("currency")
        if not amount.is_finite() or not isinstance(currency, str) or not currency.strip():
            raise ProviderMalformedAnswer("SMSC's balance answer has no valid balance and currency.")
        return ProviderBalance(amount=amount, currency=currency.strip())

    @sensitive_variables("form")
    def _call(self, base_url: str, action: str, fields: dict[str, str], backup_url: str | None) -> dict[str, Any]:
        """POST ``action`` with the credentials; the answer's fields, or the error its ``error_code`` means.

        With ``backup_url`` (safe requests only) a failure that left SMSC unavailable is asked once more there.
        """
        if self._apikey:
            form = {"apikey": self._apikey}
        elif self._login and self._password:
            form = {"login": self._login, "psw": self._password}
        else:
            logger.error("SMSC: neither an API key nor a login and password is set")
            raise ProviderConfigurationError("The SMSC credentials are not set.")
        form.update(fields, fmt="3", charset="utf-8")
        deadline_at = self._http.deadline_at()
        failure: ProviderError
        try:
            return self._post(base_url, action, form, deadline_at)
        except ProviderUnavailable as exc:
            if not backup_url:
                raise
            failure = exc
        if isinstance(failure, ProviderRateLimited):
            raise failure
        logger.info("SMSC %s: asking the backup host", action)
        return self._post(backup_url, action, form, deadline_at)

    @sensitive_variables("form")
    def _post(self, base_url: str, action: str, form: dict[str, str], deadline_at: float) -> dict[str, Any]:
        where = f"POST {base_url}{action}"
        reply = self._http.request("POST", base_url + action, where, deadline_at, data=form)
        payload = answers.parse_json(reply.body)
        if payload is answers.NOT_JSON or not isinstance(payload, dict):
            logger.warning("SMSC %s: HTTP %s, not a JSON object", where, reply.status)
            if reply.status >= 400:
                raise ProviderRejected(f"SMSC refused the request (HTTP {reply.status}).")
            raise ProviderMalformedAnswer("SMSC's answer is not a JSON object.")
        if "error" in payload or "error_code" in payload or reply.status >= 400:
            _raise_for_error(payload, where, self._secrets)
        return payload


class SmscPhoneBusy(ProviderError):
    """Another live SMSC flow has this phone: nothing was asked of SMSC, so another provider may start it."""

    error = errors.PROVIDER_PHONE_BUSY
    no_call_set_up = True


def _release_phone(sender: object, *, flow: CallAuthFlow, **kwargs: object) -> None:
    """A flow of ours that ended before its time frees its phone at once; else the lock's TTL does.

    Only while the flow has time left: its lock was taken after its expiry was set, for as
    long, so until then the lock is surely this flow's and no later one's (a later flow's lock
    released by an old flow expiring would let two live flows have one phone again).
    """
    if flow.provider != SmscProvider.name or not flow.call_to:
        return  # not started by SMSC (refused, failed over): it never held the lock
    if flow.expires_in() > _RELEASE_MARGIN:
        _cache().delete(_CACHE_PREFIX + "live:" + provider_id_for(flow.phone))


signals.flow_confirmed.connect(_release_phone, dispatch_uid="callauth-smsc-release-confirmed")
signals.flow_failed.connect(_release_phone, dispatch_uid="callauth-smsc-release-failed")


def _raise_for_error(payload: dict[str, Any], where: str, secrets: tuple[str, ...]) -> None:
    """Raise what SMSC's ``error_code`` means. An error answer hands out no number, so nothing can be called."""
    code = payload.get("error_code")
    code = code if type(code) is int else int(code) if isinstance(code, str) and code.isdigit() else None
    text_ = answers.short_text(payload.get("error"), secrets)
    logger.warning("SMSC %s: error %s: %s", where, code, text_)
    error: ProviderError
    if code == _CREDENTIALS_REFUSED:
        error = ProviderConfigurationError("SMSC refused the login, password or API key (error 2).")
    elif code == _NO_MONEY:
        error = ProviderRejected("SMSC asks for payment (error 3).", no_call_set_up=True)
    elif code in (_IP_BLOCKED, _TOO_MANY_REQUESTS):
        error = ProviderRateLimited(f"SMSC refused to serve us for now (error {code}).")
    else:
        error = ProviderRejected(f"SMSC refused the request (error {code}).", no_call_set_up=True)
    raise error


@sensitive_variables("request")
def _callback_form(request: HttpRequest) -> QueryDict | dict[str, str]:
    """The callback's fields, from its body (POST) or its query (GET); none when unreadable."""
    try:
        return request.POST if request.method == "POST" else request.GET
    except (SuspiciousOperation, BadRequest, MultiPartParserError, OSError, ValueError):
        return {}


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
