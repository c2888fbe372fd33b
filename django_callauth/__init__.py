"""Passwordless login for Django by a phone call."""

__version__ = "0.1.0"
