"""Bridges to other Django packages; each is an app of its own, added to ``INSTALLED_APPS``."""
