"""Delete finished and abandoned flows older than ``CALLAUTH_CLEANUP_AFTER_DAYS``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...conf import app_settings
from ...models import CallAuthFlow


class Command(BaseCommand):
    help = "Delete login-by-call flows older than CALLAUTH_CLEANUP_AFTER_DAYS (or --days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Age in days (default: the setting).")
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")

    def handle(self, *args: Any, days: int | None = None, dry_run: bool = False, **options: Any) -> None:
        days = app_settings.CLEANUP_AFTER_DAYS if days is None else days
        if days < 0:
            # A negative age would move the cutoff into the future and delete live flows.
            raise CommandError(f"The age must be 0 days or more, not {days}.")
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
        deleted, _ = old.delete()
        self.stdout.write(f"Deleted {deleted} flow(s) older than {days} day(s).")
