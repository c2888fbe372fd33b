"""Sphinx configuration of django-callauth's documentation (``sphinx-build -W docs docs/_build``)."""

from __future__ import annotations

project = "django-callauth"
author = "The django-callauth authors"
copyright = "2026, The django-callauth authors"  # noqa: A001
extensions: list[str] = []
exclude_patterns = ["_build", "screenshots/*.py"]
html_theme = "furo"
html_title = "django-callauth"
