"""Who may use the page: the bind rule, the token, the login cookie, the host and origin checks.

- :func:`check_bind`: binding to anything but a loopback address needs a token.
- :class:`Access` (ASGI middleware): with a token, every request carries it,
  as ``Authorization: Bearer <token>``, ``X-Facetrack-Token: <token>`` or the
  cookie the login form sets (a browser asking for a page without it is sent
  to the login form, anything else gets ``401``); without one (localhost only), requests must
  name a loopback ``Host`` (no DNS rebinding). Requests that change anything
  must not come from another origin (no cross-site requests).
"""
from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Optional
from urllib.parse import urlsplit

#: The cookie the login form sets.
COOKIE = "facetrack_token"
#: Header carrying the token (``Authorization: Bearer`` works too).
TOKEN_HEADER = "x-facetrack-token"
#: Shortest token accepted.
MIN_TOKEN_LENGTH = 16
#: Paths open without the token: the login form and its style sheet.
OPEN_PATHS = ("/login", "/static/style.css")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class BindError(ValueError):
    """The server may not listen where it was asked to (the message says what to do)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.1``, ``::1``, ``127.x.y.z``)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: Optional[str]) -> Optional[str]:
    """The token to require (None on localhost without one); :class:`BindError` when binding
    ``host`` needs a token and none (or a short one) is given."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise BindError(f"the token must be at least {MIN_TOKEN_LENGTH} characters long")
    if token is None and not is_loopback(host):
        raise BindError(f"refusing to listen on {host}: binding to anything but localhost exposes the gallery "
                        "(biometric data) to the network, so it needs a token: give --token TOKEN or set "
                        "FACETRACK_TOKEN (or bind 127.0.0.1)")
    return token


def _headers(scope) -> dict:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


def _cookies(header: str) -> dict:
    out = {}
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[key] = value
    return out


def presented_token(headers: dict) -> Optional[str]:
    """The token a request carries (header, bearer or cookie), or None."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get(TOKEN_HEADER) or _cookies(headers.get("cookie", "")).get(COOKIE)


def token_matches(given: Optional[str], token: str) -> bool:
    """Constant-time comparison of a presented token with the server's."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class Access:
    """ASGI middleware enforcing the module's rules.

    Parameters
    ----------
    app : ASGI application
    token : str or None
        Required on every request but :data:`OPEN_PATHS` when given. When None, the ``Host``
        header must be a loopback name.
    """

    def __init__(self, app, *, token: Optional[str]) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        problem = self.problem(scope, headers)
        if problem is None:
            return await self.app(scope, receive, send)
        status, detail = problem
        if status == 401 and scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
            return await _send(send, 303, b"", [(b"location", b"/login")])
        await _send(send, status, json.dumps({"detail": detail}).encode(), [(b"content-type", b"application/json")])

    def problem(self, scope, headers: dict) -> Optional[tuple]:
        """``(status, reason)`` when the request is refused, else None."""
        host = headers.get("host", "")
        if self.token is None and not is_loopback(urlsplit("//" + host).hostname or ""):
            return 403, f"host {host!r} is not localhost (the server listens on localhost only)"
        origin = headers.get("origin")
        if scope["method"] not in _SAFE_METHODS and origin and urlsplit(origin).netloc != host:
            return 403, f"cross-origin request from {origin} refused"
        if self.token is None or scope["path"] in OPEN_PATHS:
            return None
        if not token_matches(presented_token(headers), self.token):
            return 401, "a token is required: log in at /login or send the X-Facetrack-Token header"
        return None


async def _send(send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
