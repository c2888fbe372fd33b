"""Per-flow webhook secrets: made random, stored hashed, verified in constant time."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.views.debug import ExceptionReporter

from django_callauth.guards import webhook_secrets


def test_make_secret_is_url_safe_with_256_bits_and_new_every_time() -> None:
    made = {webhook_secrets.make_secret() for _ in range(100)}
    assert len(made) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", secret) for secret in made), made


def test_hash_secret_is_sha256_hex() -> None:
    assert webhook_secrets.hash_secret("abc") == hashlib.sha256(b"abc").hexdigest()


def test_hash_of_a_lone_surrogate_does_not_crash() -> None:
    # A path segment decoded from hostile bytes may hold one; it must simply not match.
    digest = webhook_secrets.hash_secret("\ud800")
    assert len(digest) == 64
    assert not webhook_secrets.verify_secret("\ud800", webhook_secrets.hash_secret("x"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s[:-1],
        lambda s: s + "A",
        lambda s: s.upper(),
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),
        lambda s: " " + s,
    ],
    ids=["shorter", "longer", "case", "last-char", "leading-space"],
)
def test_verify_refuses_a_near_miss(mutate) -> None:  # type: ignore[no-untyped-def]
    secret = "s3cr3t-Value_0123456789abcdefghijklmnopqrstu"
    assert webhook_secrets.verify_secret(mutate(secret), webhook_secrets.hash_secret(secret)) is False


def test_verify_accepts_the_secret_and_not_its_hash() -> None:
    secret = webhook_secrets.make_secret()
    digest = webhook_secrets.hash_secret(secret)
    assert webhook_secrets.verify_secret(secret, digest) is True
    assert webhook_secrets.verify_secret(digest, digest) is False  # a leaked row is no webhook


@pytest.mark.parametrize(("secret", "digest"), [("", webhook_secrets.hash_secret("")), ("x", ""), ("", "")])
def test_verify_refuses_empty_values(secret: str, digest: str) -> None:
    # A check-mode flow has an empty hash: no secret at all may open its webhook.
    assert webhook_secrets.verify_secret(secret, digest) is False


def test_verify_uses_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = webhook_secrets.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook_secrets.hmac, "compare_digest", spy)
    assert webhook_secrets.verify_secret("a", webhook_secrets.hash_secret("a"))
    assert calls == [(webhook_secrets.hash_secret("a"), webhook_secrets.hash_secret("a"))]


def test_an_error_report_does_not_show_the_secret() -> None:
    secret = webhook_secrets.make_secret()
    with pytest.raises(TypeError) as info:
        webhook_secrets.verify_secret(secret, 123)  # type: ignore[arg-type]  # a hash that is not text: a bug
    # What Django mails the admins lists every frame's local variables (DEBUG is False here);
    # from verify_secret down, as this test's own frame holds the secret too.
    report = ExceptionReporter(None, info.type, info.value, info.tb.tb_next).get_traceback_html()
    assert "verify_secret" in report
    assert secret not in report
