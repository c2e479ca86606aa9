"""What the two Python benchmark servers share: the command line and the payloads.

Every server in bench/servers/ speaks the same protocol on ``/socket.io/``:

- on connection the socket joins the room ``"room"``;
- ``"echo"``: the ack repeats the event's arguments;
- ``"broadcast"`` ``(n, size)``: the server emits ``"msg"`` with a ``size``-byte string to
  ``"room"`` ``n`` times, then acks ``"done"``;
- the line ``READY`` on stdout once it listens.

RSS and CPU time are measured from outside, from /proc/<pid>, by bench/run.py.
"""

from __future__ import annotations

import argparse
import sys

#: Exit status of a server asked for an option it does not support (run.py prints n/a).
UNSUPPORTED = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ping-interval", type=float, default=25.0)
    p.add_argument("--ping-timeout", type=float, default=20.0)
    p.add_argument("--deflate", action="store_true",
                   help="accept WebSocket permessage-deflate")
    p.add_argument("--max-size", type=int, default=20000,
                   help="eventlet.wsgi max_size: concurrent connections (default 1024 in eventlet)")
    return p.parse_args(argv)


def unsupported(what: str) -> None:
    print(f"UNSUPPORTED {what}", flush=True)
    sys.exit(UNSUPPORTED)


def ready(port: int) -> None:
    print(f"READY {port}", flush=True)
