"""The example's ASGI application with an access log in gunicorn's format (``stack.ACCESS_LOG_FORMAT``).

uvicorn's own access log has no format option: it cannot name the worker's pid or the
``X-Client`` header the stack test reads. ``uvicorn benchmarks.asgi_access_log:application``
serves the example as ``example.asgi`` does, and appends one line per request to the file
``BENCH_ACCESS_LOG`` names: pid, status, microseconds from the request's arrival to its
answer's end, method, path, the client's tag. Without ``BENCH_ACCESS_LOG`` it logs nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from example.asgi import application as site

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_LOG = os.environ.get("BENCH_ACCESS_LOG", "")
# One write() per line on a file opened for appending: the workers' lines never interleave.
_fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if _LOG else -1


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or _fd < 0:
        await site(scope, receive, send)
        return
    began = time.monotonic()
    status = 0

    async def logging_send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            headers = dict(scope.get("headers") or [])
            tag = headers.get(b"x-client", b"-").decode("latin-1") or "-"
            micros = int((time.monotonic() - began) * 1e6)
            line = f'{os.getpid()} {status} {micros} {scope["method"]} {scope["path"]} "{tag}"\n'
            os.write(_fd, line.encode("utf-8", "replace"))

    await site(scope, receive, logging_send)
