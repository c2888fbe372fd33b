"""Sphinx configuration of django-callauth's documentation (``sphinx-build -W docs docs/_build``)."""

from __future__ import annotations

import sys
from pathlib import Path

import django
from django.conf import settings

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

# autodoc imports the package, whose models need configured settings and a ready app
# registry; no database is opened. Settings of its own, so the docs need no test extra.
if not settings.configured:
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django_callauth",
        ],
    )
    django.setup()

import django_callauth  # noqa: E402

project = "django-callauth"
author = "The django-callauth authors"
copyright = "2026, The django-callauth authors"
release = django_callauth.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "callauth_docs",  # the ``setting`` role and directive, as in Django's own docs
]
exclude_patterns = ["_build", "_ext", "_inventories", "screenshots/*.py"]
html_theme = "furo"
html_title = "django-callauth"

# Intersphinx reads the inventories shipped in docs/_inventories/, never the network, so the
# build gives the same result offline and in CI (`make inventories` refreshes them online).
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(DOCS / "_inventories" / "python.inv")),
    "django": ("https://docs.djangoproject.com/en/5.2/", str(DOCS / "_inventories" / "django.inv")),
}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
