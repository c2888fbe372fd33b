"""The example's two bare views, the yardsticks of benchmarks/polls.py: off unless asked for,
and doing exactly what their names say (the session; the session and one row)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.helpers import sandbox_confirm

ROOT = Path(__file__).resolve().parent.parent


def resolves_bench_urls(**environ: str) -> bool:
    """Whether the example site, started with ``environ``, serves /bench/session/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLAUTH_", "EXAMPLE_")) and k != "DATABASE_URL"}
    env.update(environ, DJANGO_SETTINGS_MODULE="example.settings")
    code = "import django; django.setup(); from django.urls import resolve; resolve('/bench/session/')"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "example_project", env=env, capture_output=True)
    return run.returncode == 0


def test_the_bench_views_are_off_unless_the_flag_is_set() -> None:
    assert not resolves_bench_urls()
    assert resolves_bench_urls(EXAMPLE_BENCHMARK_VIEWS="1")


@pytest.mark.django_db
@pytest.mark.urls("tests.bench_urls")
def test_session_view_reads_the_session_and_row_view_one_row_more(django_assert_num_queries: Any) -> None:
    browser = Client()
    sandbox_confirm(browser)  # a session holding a flow
    with django_assert_num_queries(1):
        session_only = browser.get("/bench/session/")
    with django_assert_num_queries(2):
        session_row = browser.get("/bench/session-row/")
    assert session_only.json() == {"status": "pending", "flow": True}
    assert session_row.json() == {"status": "confirmed", "flow": True}
    assert "no-cache" in session_only["Cache-Control"]
