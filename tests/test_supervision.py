"""Background work survives failures: a heartbeat whose send fails is logged and ends only
its own session; the other sessions keep their heartbeat. (The Redis listener's
supervision is tested in test_redis_adapter.py, by killing its connection.)"""

from __future__ import annotations

import logging
import time

from flask_ioengine.concurrency import get_backend
from flask_ioengine.engineio.server import Server
from flask_ioengine.engineio.socket import Socket


def test_a_failing_heartbeat_is_logged_and_ends_only_its_session(caplog):
    server = Server(ping_interval=0.05, ping_timeout=0.2)
    server.aio = get_backend("threading")
    closed: dict[str, str] = {}
    good, bad = Socket(server, "good", None, "polling"), Socket(server, "bad", None, "polling")
    for s in (good, bad):
        s.on_close = lambda reason, s=s: closed.__setitem__(s.sid, reason)
        server._open(s)

    def boom() -> None:
        raise RuntimeError("transport exploded")

    bad.flush = boom  # its next PING cannot be sent
    pongs = 0
    deadline = time.monotonic() + 10
    with caplog.at_level(logging.ERROR, logger="flask_ioengine.engineio"):
        while (pongs < 8 or "bad" not in closed) and time.monotonic() < deadline:
            if "2" in good.take():  # answer the good session's pings, as a client would
                good.receive(3, "")  # PONG
                pongs += 1
            time.sleep(0.005)
    assert closed.get("bad") == "transport error", closed
    assert "good" not in closed and good.state == "open" and pongs >= 8
    assert "transport exploded" in caplog.text
    assert "bad" not in server.sockets and "good" in server.sockets
    good.close()
