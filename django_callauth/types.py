"""Types the public API names in its signatures: the user, and the base of outcome enums.

``User`` is a user of whatever ``AUTH_USER_MODEL`` is: at run time ``AbstractBaseUser``;
to mypy with django-stubs, the project's own user model. The app only relies on what
every Django user has (``pk``, ``is_active``, ``get_username()``,
``has_usable_password()``), and reads ``is_staff`` and ``is_superuser`` with ``getattr``,
so a model without them works too.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # django-stubs' own alias: its mypy plugin makes it the project's AUTH_USER_MODEL, as
    # get_user_model(), authenticate() and login() are typed, so overrides can name their model.
    from django.contrib.auth.models import _User as User
else:
    from django.contrib.auth.base_user import AbstractBaseUser as User

__all__ = ["Outcome", "User"]


class Outcome(str, enum.Enum):  # noqa: UP042  (enum.StrEnum is Python 3.11+; 3.10 is supported)
    """Base of the outcome enums a function returns: a member is its value, also in a log line."""

    def __str__(self) -> str:
        return str(self.value)
