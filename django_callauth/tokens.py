"""Per-flow webhook secrets: make, hash, verify.

The secret travels in the webhook URL *path* (the provider appends its own query
string) and is stored only as a SHA-256 hash, so a leaked database row cannot be
replayed as a webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_BYTES = 32


def make_secret() -> str:
    """A new URL-safe secret with 256 bits of entropy."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    # A plain hash is enough: the secret is random with 256 bits, not a password.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def verify_secret(secret: str, secret_hash: str) -> bool:
    """Whether ``secret`` hashes to ``secret_hash``, compared in constant time."""
    if not secret or not secret_hash:
        return False
    return hmac.compare_digest(hash_secret(secret), secret_hash)
