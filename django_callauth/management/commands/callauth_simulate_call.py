"""Play the phone in sandbox mode: ``callauth_simulate_call +79990001234 [--caller PHONE]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...flows import simulate_call
from ...phones import InvalidPhoneNumber, normalize_phone, parse_provider_phone
from ...providers import get_provider


class Command(BaseCommand):
    help = "Simulate a call to a number handed out by the sandbox provider."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", help="The number shown on the challenge page.")
        parser.add_argument("--caller", help="The calling phone (default: the phone of the flow).")

    def handle(self, *args: Any, number: str, caller: str | None = None, **options: Any) -> None:
        if not get_provider().simulated:
            raise CommandError("CALLAUTH_PROVIDER is not 'sandbox': real calls cannot be simulated.")
        call_to = parse_provider_phone(number)
        if call_to is None:
            raise CommandError(f"{number!r} is not a phone number.")
        caller_phone = None
        if caller:
            try:
                caller_phone = normalize_phone(caller)
            except InvalidPhoneNumber as exc:
                raise CommandError(f"--caller: {exc.message}") from None
        flow = simulate_call(call_to, caller_phone)
        if flow is None:
            raise CommandError(f"No login is waiting for a call to {call_to}.")
        # Not flow.caller: a call that came too late is not recorded on the flow.
        caller_phone = caller_phone or flow.phone
        self.stdout.write(f"Call to {call_to} from {caller_phone}: the login is now {flow.current_status()}.")
