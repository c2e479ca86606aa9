"""The ``cookie`` option: the Set-Cookie header that lets a load balancer stick on the sid."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$")
_ATTR = re.compile(r"^[\x20-\x3a\x3c-\x7e]*$")
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}

DEFAULTS: dict[str, Any] = {"name": "io", "path": "/", "httponly": True, "samesite": "Lax"}


def normalize(option: bool | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``True`` → the defaults; a dict is merged over them; falsy → no cookie."""
    if not option:
        return None
    opts = dict(DEFAULTS)
    if isinstance(option, Mapping):
        opts.update({k.lower().replace("-", "_"): v for k, v in option.items()})
    if opts.get("samesite") is True:
        opts["samesite"] = "Strict"
    if not _TOKEN.match(str(opts["name"])):
        raise ValueError(f"invalid cookie name {opts['name']!r}")
    for key in ("path", "domain"):
        if opts.get(key) and not _ATTR.match(str(opts[key])):
            raise ValueError(f"invalid cookie {key} {opts[key]!r}")
    samesite = opts.get("samesite")
    if samesite and str(samesite).lower() not in _SAMESITE:
        raise ValueError(f"invalid cookie samesite {samesite!r}")
    return opts


def serialize(opts: Mapping[str, Any], value: str) -> str:
    """Render ``name=value`` and its attributes in the order browsers and Node use."""
    encode: Callable[[str], str] = opts.get("encode") or (lambda v: quote(v, safe=""))
    encoded = encode(value)
    if not _VALUE.match(encoded):
        raise ValueError("cookie value has characters a cookie cannot carry")
    parts = [f"{opts['name']}={encoded}"]
    max_age = opts.get("max_age")
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if opts.get("domain"):
        parts.append(f"Domain={opts['domain']}")
    if opts.get("path"):
        parts.append(f"Path={opts['path']}")
    expires = opts.get("expires")
    if expires is not None:
        if isinstance(expires, (int, float)):
            expires = datetime.fromtimestamp(expires, tz=timezone.utc)
        if isinstance(expires, datetime):
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=timezone.utc)
            expires = format_datetime(expires.astimezone(timezone.utc), usegmt=True)
        parts.append(f"Expires={expires}")
    if opts.get("httponly"):
        parts.append("HttpOnly")
    if opts.get("secure"):
        parts.append("Secure")
    if opts.get("partitioned"):
        parts.append("Partitioned")
    if opts.get("samesite"):
        parts.append(f"SameSite={_SAMESITE[str(opts['samesite']).lower()]}")
    return "; ".join(parts)
