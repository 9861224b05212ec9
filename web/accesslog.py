"""Request logs in the combined log format, one line per request.

`AccessLog` is WSGI middleware around the whole app, fast path included, so
every answer is logged the same way. It is off unless `seedfeeds serve
--access-log`; the lines go to the `seedfeeds.access` logger, which
`log_to_stdout()` sends to standard output as they are, with no prefix.

    127.0.0.1 - - [23/Nov/2026:22:07:01 +0000] "GET /feeds/all.atom HTTP/1.1" 200 1234 "-" "curl/8.5.0"

The request line, referrer and user agent are the client's own bytes, so they
are escaped as Apache does (`\\"`, `\\\\`, `\\xhh` for anything not printable
ASCII): a hostile request can never forge a second line.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime
from typing import Callable, Iterable, Iterator
from urllib.parse import quote

from .fastpath import StartResponse, WSGIApp

LOGGER = "seedfeeds.access"
_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


def log_to_stdout() -> logging.Logger:
    """The access logger, writing bare lines to standard output (once, however often called)."""
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the root handler would prefix a time and level
    return logger


class AccessLog:
    """WSGI middleware: one combined-log-format line per request, once its body is sent."""

    def __init__(self, app: WSGIApp, logger: logging.Logger) -> None:
        self.app = app
        self.write = logger.info

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        received = datetime.now().astimezone()
        status = ["-"]

        def start(line: str, headers: list[tuple[str, str]], exc_info=None):
            status[0] = line.split(" ", 1)[0]
            return start_response(line, headers, exc_info)

        body = self.app(environ, start)
        if isinstance(body, list):  # the fast path's answers: keep them a list (granian sends those at once)
            self.write(combined_line(environ, received, status[0], sum(map(len, body))))
            return body
        return _Counted(body, lambda sent: self.write(combined_line(environ, received, status[0], sent)))


class _Counted:
    """A response body that counts its bytes as they are sent and reports them when closed."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self.body = body
        self.done = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.done(self.sent)


def combined_line(environ: dict, received: datetime, status: str, sent: int) -> str:
    """`host ident user [time] "request" status bytes "referer" "user-agent"`, escaped."""
    # PATH_INFO holds the decoded path as latin-1 text (PEP 3333): quote it back.
    target = quote(environ.get("PATH_INFO", "").encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    request = f'{environ.get("REQUEST_METHOD", "-")} {target} {environ.get("SERVER_PROTOCOL", "-")}'
    return (f'{environ.get("REMOTE_ADDR") or "-"} - {_escape(environ.get("REMOTE_USER") or "-")} '
            f'[{received.strftime("%d/%b/%Y:%H:%M:%S %z")}] "{_escape(request)}" {status} {sent or "-"} '
            f'"{_escape(environ.get("HTTP_REFERER", "-"))}" "{_escape(environ.get("HTTP_USER_AGENT", "-"))}"')


def _escape(text: str) -> str:
    # WSGI header values are latin-1 text (PEP 3333): one character per byte received.
    return _UNSAFE.sub(lambda m: "\\" + m[0] if m[0] in '"\\' else f"\\x{ord(m[0]):02x}", text)
