"""Cross-origin policy: the ``cors`` option (like Node's ``cors`` package) and same-origin default.

Browsers enforce CORS on polling requests only; a WebSocket handshake is checked here
too, so a cross-site page cannot open a socket that carries the user's session cookie.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

Headers = list[tuple[str, str]]
DEFAULT_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"


def _netloc(origin: str) -> str:
    parts = urlsplit(origin)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme)
    return host if port in (None, default) else f"{host}:{port}"


def _host_netloc(host: str, scheme: str) -> str:
    return _netloc(f"{scheme}://{host}")


class CorsPolicy:
    """Decides whether an origin may use the engine, and which CORS headers to answer."""

    def __init__(self, options: Mapping[str, Any] | bool | None) -> None:
        self.enabled = bool(options)
        opts: Mapping[str, Any] = options if isinstance(options, Mapping) else {}
        if options is True:
            opts = {"origin": "*"}
        self.origin: Any = opts.get("origin", "*")
        self.credentials = bool(opts.get("credentials", False))
        methods = opts.get("methods", DEFAULT_METHODS)
        self.methods = methods if isinstance(methods, str) else ",".join(methods)
        allowed = opts.get("allowed_headers")
        self.allowed_headers = (
            allowed if allowed is None or isinstance(allowed, str) else ",".join(allowed)
        )
        exposed = opts.get("exposed_headers")
        self.exposed_headers = (
            exposed if exposed is None or isinstance(exposed, str) else ",".join(exposed)
        )
        max_age = opts.get("max_age")
        self.max_age = None if max_age is None else str(int(max_age))

    def _matches(self, origin: str) -> bool:
        rule = self.origin
        if rule is True or rule == "*":
            return True
        if rule is False or rule is None:
            return False
        if callable(rule) and not isinstance(rule, re.Pattern):
            fn: Callable[[str], bool] = rule
            return bool(fn(origin))
        rules: Iterable[Any] = rule if isinstance(rule, (list, tuple, set)) else [rule]
        for r in rules:
            if isinstance(r, re.Pattern):
                if r.search(origin):
                    return True
            elif r == origin:
                return True
        return False

    def allows(self, origin: str | None, host: str | None, scheme: str = "http") -> bool:
        """May a request with this ``Origin`` header use the engine?"""
        if not origin:
            return True  # not a browser cross-origin request
        if host and _netloc(origin) == _host_netloc(host, scheme):
            return True  # same origin is always allowed
        return self.enabled and self._matches(origin)

    def headers(self, origin: str | None, preflight: bool = False,
                request_headers: str | None = None) -> Headers:
        """The CORS headers for a response to a request from ``origin``."""
        if not self.enabled or not origin:
            return []
        out: Headers = []
        if self.origin == "*" and not self.credentials:
            out.append(("Access-Control-Allow-Origin", "*"))
        elif self._matches(origin):
            out.append(("Access-Control-Allow-Origin", origin))
            out.append(("Vary", "Origin"))
        else:
            return []
        if self.credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        if preflight:
            out.append(("Access-Control-Allow-Methods", self.methods))
            allowed = self.allowed_headers if self.allowed_headers is not None else request_headers
            if allowed:
                out.append(("Access-Control-Allow-Headers", allowed))
                if self.allowed_headers is None:
                    out.append(("Vary", "Access-Control-Request-Headers"))
            if self.max_age:
                out.append(("Access-Control-Max-Age", self.max_age))
        elif self.exposed_headers:
            out.append(("Access-Control-Expose-Headers", self.exposed_headers))
        return out
