"""Playwright's pages on the example site: the only "browser" of the tests (people's browsers
played by Django's test ``Client`` are in clients.py; by ``requests``, in servers.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .constants import CHALLENGE, TYPED_PHONE

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page


def open_challenge(page: Page, site: str, phone: str = TYPED_PHONE) -> None:
    """Type the phone on the login page and submit it: the page says whom to call."""
    page.goto(site + "/login/")
    page.fill("#callauth-phone", phone)
    page.click("form.callauth-form button[type=submit]")
    page.wait_for_url(site + CHALLENGE)


def api_post(context: BrowserContext, site: str, path: str, **data: str) -> dict[str, Any]:
    """POST as an API client of this browser's session (its cookies, its CSRF token); the JSON answer."""
    csrf = next(cookie["value"] for cookie in context.cookies() if cookie["name"] == "csrftoken")
    headers = {"Accept": "application/json", "X-CSRFToken": csrf}
    return context.request.post(site + path, form=data, headers=headers).json()
