"""The migrations describe the models exactly: a model change without its migration fails here."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    # --check exits non-zero when makemigrations would write a migration.
    call_command("makemigrations", "callauth", "--check", "--dry-run", verbosity=0)
