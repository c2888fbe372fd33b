"""This process's one pooled ``requests.Session``, shared by every provider client and thread."""

from __future__ import annotations

import os
import threading
from http.cookiejar import DefaultCookiePolicy

import requests

_session: requests.Session | None = None
_session_pid = 0
_session_lock = threading.Lock()


def session() -> requests.Session:
    """This process's one pooled session: keeps connections alive, never keeps cookies.

    Shared by every thread: nothing on it changes per request (no cookies are stored, no
    auth, every request refuses redirects), and urllib3's pools are thread-safe. A forked
    worker makes its own, so no socket is ever shared across processes.
    """
    global _session, _session_pid
    with _session_lock:
        if _session is None or _session_pid != os.getpid():
            made = requests.Session()
            made.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # accepts none
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
            made.mount("https://", adapter)
            made.mount("http://", adapter)
            _session, _session_pid = made, os.getpid()
        return _session
