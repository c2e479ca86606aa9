"""What the soak servers share: the command line and the statistics they report.

Every server in soak/servers/ speaks the protocol of bench/servers/ (join ``"room"`` on
connection, ``"echo"`` acks its arguments, ``READY <port>`` on stdout once listening),
plus what the soak scenarios need:

- the client may send ``{"role": "..."}`` as its CONNECT auth; connections and
  disconnect reasons are counted per role (``GET /stats``);
- ``"flood"`` ``(seq)``: counted per connection, with a check that ``seq`` is the next
  one expected (in-order handling); ``"flood_end"`` acks ``{"count", "out_of_order"}``;
- ``"broadcast"`` ``(n, size)`` or ``GET /broadcast?n=&size=``: in a task of its own the
  server emits ``"msg"`` ``(i, payload)`` to ``"room"`` for i in 0..n-1, yielding to the
  event loop after every emit (``eventlet.sleep(0)`` / ``setImmediate``) — the same rule
  in the three servers; ``GET /stats`` shows when it ended;
- ``GET /stats``: ``{"connected": {role: n}, "reasons": {role: {reason: n}},
  "flood": {...}, "broadcast": {...}, "errors": n}``.

RSS and open fds are measured from outside, from /proc/<pid>, by soak/run.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ping-interval", type=float, default=25.0)
    p.add_argument("--ping-timeout", type=float, default=20.0)
    p.add_argument("--max-write-buffer", type=int, default=None,
                   help="flask_ioengine's max_write_buffer (bytes); ignored by the others")
    p.add_argument("--max-size", type=int, default=20000,
                   help="eventlet.wsgi max_size: concurrent connections (eventlet's default is 1024)")
    return p.parse_args(argv)


def ready(port: int) -> None:
    print(f"READY {port}", flush=True)


class Stats:
    """Counters kept by a Python soak server (one event loop: no locking needed)."""

    def __init__(self) -> None:
        self.connected: Counter[str] = Counter()
        self.reasons: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.errors = 0
        self.flood_count = 0
        self.flood_out_of_order = 0
        self.flood_next: dict[str, int] = {}
        self.broadcast: dict[str, Any] = {"running": False, "done": 0}

    # -- connections ---------------------------------------------------------------------

    @staticmethod
    def role_of(auth: Any) -> str:
        if isinstance(auth, dict) and isinstance(auth.get("role"), str):
            return auth["role"][:32]
        return "client"

    def on_connect(self, role: str) -> None:
        self.connected[role] += 1

    def on_disconnect(self, sid: str, role: str, reason: Any) -> None:
        self.connected[role] -= 1
        self.reasons[role][str(reason)] += 1
        self.flood_next.pop(sid, None)

    # -- flood ---------------------------------------------------------------------------

    def on_flood(self, sid: str, seq: Any) -> None:
        expected = self.flood_next.get(sid, 0)
        if seq != expected:
            self.flood_out_of_order += 1
        self.flood_next[sid] = (seq if isinstance(seq, int) else expected) + 1
        self.flood_count += 1

    def flood_end(self) -> dict[str, int]:
        return {"count": self.flood_count, "out_of_order": self.flood_out_of_order}

    # -- broadcast -----------------------------------------------------------------------

    def run_broadcast(self, n: int, size: int, emit: Any, yield_: Any) -> None:
        """Emit ``"msg"`` (i, payload) ``n`` times through ``emit``, yielding after each."""
        b = self.broadcast
        if b["running"]:
            return
        payload = "x" * size
        b.update(running=True, n=n, size=size, started=time.monotonic(), ended=None)
        try:
            for i in range(n):
                emit(i, payload)
                yield_()
        except Exception as err:  # reported through /stats and the log
            self.errors += 1
            print(f"ERROR broadcast failed: {err!r}", file=sys.stderr, flush=True)
        finally:
            b["running"] = False
            b["done"] += 1
            b["ended"] = time.monotonic()
            b["elapsed_ms"] = round((b["ended"] - b["started"]) * 1000, 1)

    def snapshot(self) -> dict[str, Any]:
        return {
            "connected": {k: v for k, v in self.connected.items() if v},
            "reasons": {role: dict(c) for role, c in self.reasons.items()},
            "errors": self.errors,
            "flood": {"count": self.flood_count, "out_of_order": self.flood_out_of_order},
            "broadcast": {k: v for k, v in self.broadcast.items() if k not in ("started", "ended")},
        }

    def json(self) -> str:
        return json.dumps(self.snapshot())
