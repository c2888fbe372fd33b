"""Delete finished and abandoned flows older than ``CALLAUTH_CLEANUP_AFTER_DAYS``.

In batches, each one statement and its own short transaction: logins never touch old
rows, but one DELETE of a million rows holds the database's I/O and its WAL until the end,
and a batch that fails leaves the earlier ones done.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...conf import SettingError, app_settings
from ...models import CallAuthFlow

BATCH_SIZE = 5000


class Command(BaseCommand):
    help = "Delete login-by-call flows older than CALLAUTH_CLEANUP_AFTER_DAYS (or --days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Age in days (default: the setting).")
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"Flows per DELETE (default {BATCH_SIZE})."
        )

    def handle(
        self, *args: Any, days: int | None = None, dry_run: bool = False, batch_size: int = BATCH_SIZE, **options: Any
    ) -> None:
        try:
            days = app_settings.CLEANUP_AFTER_DAYS if days is None else days
        except SettingError as exc:  # call_command runs no system checks (callauth.E013)
            raise CommandError(str(exc)) from None
        if days < 0:
            # A negative age would move the cutoff into the future and delete live flows.
            raise CommandError(f"The age must be 0 days or more, not {days}.")
        if batch_size <= 0:
            raise CommandError(f"The batch size must be 1 or more, not {batch_size}.")
        # Only flows whose deadline and finishing window are past: a live flow is never
        # deleted, whatever --days says (each provider's flows live as long as its numbers).
        now = timezone.now()
        old = CallAuthFlow.objects.filter(
            created_at__lt=now - timedelta(days=days),
            expires_at__lt=now - timedelta(seconds=app_settings.COMPLETE_WINDOW),
        )
        if dry_run:
            self.stdout.write(f"{old.count()} flow(s) older than {days} day(s) would be deleted.")
            return
        deleted = 0
        while True:
            # One statement a batch (DELETE … WHERE id IN (SELECT … LIMIT n)), oldest first
            # through the created_at index; each commits on its own.
            batch = old.order_by("created_at").values("pk")[:batch_size]
            count = CallAuthFlow.objects.filter(pk__in=batch).delete()[0]
            deleted += count
            if count < batch_size:
                break
        self.stdout.write(f"Deleted {deleted} flow(s) older than {days} day(s).")
