"""Time and what a test records: the clock, flow rows, signals, log lines, a cache that is down."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from django_callauth.models import CallAuthFlow, FlowStatus

from .constants import PHONE, SANDBOX_CALL_TO


@dataclass
class Clock:
    """What ``timezone.now()`` and the package's other clocks answer while a test runs; nothing sleeps."""

    now: datetime

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Sent:
    """One signal of django_callauth.signals as a receiver got it (without ``signal``)."""

    signal: str
    sender: Any
    kwargs: dict[str, Any]


class SignalLog(list[Sent]):
    """Every signal of django_callauth.signals sent while a test runs, in order (the ``sent`` fixture)."""

    def of(self, name: str) -> list[Sent]:
        return [event for event in self if event.signal == name]


class FlowFactory:
    """Makes flow rows as a start would leave them (the ``flow_factory`` fixture).

    A pending flow of PHONE on the sandbox, created now (or ``age`` ago) and living two
    minutes, unless ``fields`` say otherwise; a confirmed one is confirmed by its own phone
    at its creation unless told. A module whose flows belong to another provider changes
    ``defaults``.
    """

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {
            "phone": PHONE,
            "call_to": SANDBOX_CALL_TO,
            "provider": "sandbox",
            "provider_id": "sandbox-1",
        }

    def __call__(self, *, age: timedelta = timedelta(0), lifetime: int = 120, **fields: Any) -> CallAuthFlow:
        created = fields.pop("created_at", None) or timezone.now() - age
        values = {**self.defaults, "created_at": created, "expires_at": created + timedelta(seconds=lifetime)}
        values.update(fields)
        if values.get("status") == FlowStatus.CONFIRMED:
            values.setdefault("caller", values["phone"])
            values.setdefault("confirmed_at", created)
        return CallAuthFlow.objects.create(**values)


def stored(flow: CallAuthFlow) -> CallAuthFlow:
    """``flow`` as the database has it now."""
    return CallAuthFlow.objects.get(pk=flow.pk)


def snapshot() -> list[dict[str, Any]]:
    """Every flow row, every column: "writes nothing" means this does not change."""
    return list(CallAuthFlow.objects.order_by("pk").values())


class RootLog(logging.Handler):
    """A handler on the root logger: the records every handler there gets, and the text it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))  # as a real handler: the traceback included

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class BrokenCache:
    """A cache that is down: every read and write raises (monkeypatched over a module's ``_cache``)."""

    def get_many(self, *args: Any) -> None:
        raise ConnectionError("cache down")

    set = get_many
