"""Each configured provider's health: reachable, balance, what the last day cost, below its threshold.

For cron and monitoring: the exit status is 1 when a provider cannot be reached or is
below its ``CALLAUTH_LOW_BALANCE`` threshold. Each balance seen is stored in the shared
cache (providers/balances.py), where starts read it to pass by a low provider; no login ever waits
for a balance request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...conf import app_settings
from ...models import CallAuthFlow
from ...providers import balances, get_providers
from ...providers.base import CallAuthProvider, ProviderBalance, ProviderError

DAY = timedelta(hours=24)


@dataclass
class Health:
    """What the command found out about one provider."""

    name: str
    has_balance: bool = True
    balance: ProviderBalance | None = None
    error: str = ""
    starts: int = 0
    threshold: Decimal | None = None

    @property
    def reachable(self) -> bool | None:
        """Whether its balance request was answered; None: it has no balance method."""
        return None if not self.has_balance else self.balance is not None

    @property
    def low(self) -> bool:
        return self.balance is not None and balances.is_low(self.name, self.balance)

    @property
    def cost(self) -> Decimal | None:
        """The last day's billed starts times one login's price, where the provider names it."""
        price = self.balance.price if self.balance else None
        return None if price is None else price * self.starts

    def as_json(self) -> dict[str, Any]:
        balance = self.balance
        return {
            "provider": self.name,
            "reachable": self.reachable,
            "error": self.error,
            "balance": _text(balance.amount if balance else None),
            "currency": balance.currency if balance else None,
            "price": _text(balance.price if balance else None),
            "starts_last_day": self.starts,
            "cost_last_day": _text(self.cost),
            "threshold": _text(self.threshold),
            "low": self.low,
        }

    def as_line(self) -> str:
        balance = self.balance
        if self.reachable is None:
            parts = ["no balance method"]
        elif balance is None:
            parts = [f"UNREACHABLE ({self.error})"]
        else:
            parts = [f"reachable, balance {balance.amount} {balance.currency}"]
            if balance.price is not None:
                parts.append(f"price {balance.price}")
        cost = f", cost {self.cost}" if self.cost is not None else ""
        parts.append(f"last 24 h: {self.starts} billed start(s){cost}")
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold}: {'LOW' if self.low else 'ok'}")
        return f"{self.name}: " + "; ".join(parts)


def _text(amount: Decimal | None) -> str | None:
    """Amounts in JSON as text: a float would turn 0.2 into 0.2000000000000000111."""
    return None if amount is None else str(amount)


class Command(BaseCommand):
    help = "Ask each configured provider for its balance; exit 1 when one is unreachable or below its threshold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object instead of lines."
        )

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        try:
            providers = get_providers()
            app_settings.LOW_BALANCE  # noqa: B018 -- read once here, so a wrong value is a clear error
        except ImproperlyConfigured as exc:  # call_command runs no system checks
            raise CommandError(str(exc)) from None
        since = timezone.now() - DAY
        report = [self._health(provider, since) for provider in providers]
        failing = [h.name for h in report if h.reachable is False or h.low]
        if as_json:
            self.stdout.write(_dumps({"ok": not failing, "providers": [h.as_json() for h in report]}))
        else:
            for health in report:
                self.stdout.write(health.as_line())
        if failing:
            raise CommandError(f"Unreachable or below the threshold: {', '.join(failing)}.", returncode=1)

    def _health(self, provider: CallAuthProvider, since: Any) -> Health:
        name = provider.name
        health = Health(name, threshold=balances.threshold(name))
        # Billed: every start the provider answered (a flow it set up, provider_id set).
        health.starts = (
            CallAuthFlow.objects.filter(provider=name, created_at__gte=since).exclude(provider_id="").count()
        )
        try:
            balance = provider.balance()
        except ProviderError as exc:
            health.error = str(exc)  # our own text: it never carries a secret
            return health
        if balance is None:
            health.has_balance = False
            return health
        health.balance = balance
        balances.record(name, balance)
        return health


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
