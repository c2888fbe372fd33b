"""Per-flow webhook secrets: make, hash, verify.

The secret travels in the webhook URL *path* (the provider appends its own query
string) and is stored only as a SHA-256 hash, so a leaked database row cannot be
replayed as a webhook. Functions holding a secret hide it from Django's error reports
(``sensitive_variables``): an exception report lists every frame's local variables.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.views.decorators.debug import sensitive_variables

SECRET_BYTES = 32


def make_secret() -> str:
    """A new URL-safe secret with 256 bits of entropy."""
    return secrets.token_urlsafe(SECRET_BYTES)


@sensitive_variables("secret")
def hash_secret(secret: str) -> str:
    # A plain hash is enough: the secret is random with 256 bits, not a password.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@sensitive_variables("secret")
def verify_secret(secret: str, secret_hash: str) -> bool:
    """Whether ``secret`` hashes to ``secret_hash``, compared in constant time."""
    if not secret or not secret_hash:
        return False
    return hmac.compare_digest(hash_secret(secret), secret_hash)
