"""The example of docs/writing-a-provider.rst passes the contract suite, against a fake of its API.

The example lives in docs/example_provider.py, where contributors read it; it is loaded
from there (as the module ``example_provider``), so what the document shows is what runs.
"""

from __future__ import annotations

import importlib.util
import itertools
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.fake_server import FakeServer, Recorded
from tests.provider_contract import HttpProviderContract

_EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example_provider.py"
_spec = importlib.util.spec_from_file_location("example_provider", _EXAMPLE)
assert _spec is not None and _spec.loader is not None
example_provider = sys.modules.setdefault("example_provider", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(example_provider)
ExampleCallsProvider = example_provider.ExampleCallsProvider


@dataclass
class FakeExampleCalls(FakeServer):
    """The made-up "Example Calls" API the example talks to."""

    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    api_path = "/api/"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._calls: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def make_call(self, call_to: str, caller: str, *, lose_webhook: bool = False) -> None:
        with self._lock:
            for call in self._calls.values():
                if call["number"] == call_to and time.monotonic() < call["expires_at"]:
                    call["caller"] = caller

    def _answer(self, asked: Recorded) -> tuple[int, Any]:
        if asked.headers.get("Authorization") != f"Bearer {self.key}":
            return 401, {"error": "bad key"}
        method, action = asked.method, asked.action
        if method == "POST" and action == "calls":
            call_id = f"c-{next(self._ids)}"
            number = f"+7495{random.randint(0, 9_999_999):07d}"
            with self._lock:
                self._calls[call_id] = {"number": number, "caller": None, "expires_at": self._expires_at()}
            return 201, {"id": call_id, "number": number}
        call = self._calls.get(action.removeprefix("calls/"))
        if method == "GET" and call is not None:
            return 200, {"caller": call["caller"]}
        return 404, {"error": "not found"}


@pytest.fixture
def fake_example_calls() -> Iterator[FakeExampleCalls]:
    with FakeExampleCalls() as fake:
        yield fake


class TestContract(HttpProviderContract):
    """The example provider passes the contract every provider passes."""

    wrong_start_answers: ClassVar[list[Any]] = [
        '{"id": ["c-1"], "number": "+74951234567"}',
        '{"id": "c-1", "number": "+78091234567"}',  # premium-rate
        '{"id": "c-1", "number": 7.4e10}',
        '{"id": "c-1"}',
    ]
    wrong_check_answers: ClassVar[list[Any]] = [
        '{"caller": 79001234567.0}',
        '{"caller": ["+79001234567"]}',
        '{"caller": "+7900123456"}',
        '{"called": true}',
        "[]",
    ]

    @pytest.fixture(autouse=True)
    def _fake(self, fake_example_calls: FakeExampleCalls) -> None:
        self.fake = fake_example_calls
        self.secret = fake_example_calls.key

    def make_provider(self, *, timeout: tuple[float, float] = (2, 2), deadline: float = 4) -> Any:
        return ExampleCallsProvider(key=self.fake.key, base_url=self.fake.base_url, timeout=timeout, deadline=deadline)
