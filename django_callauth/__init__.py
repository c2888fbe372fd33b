"""Passwordless login for Django by a phone call."""

# The one place the version is written: setup.cfg reads it (attr:), and so do the docs.
__version__ = "0.1.0"
