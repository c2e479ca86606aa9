"""One Engine.IO session: its lifecycle, heartbeat, upgrade and send buffer.

Theory of operation
-------------------
A session lives in one of these states; the table says which packets it accepts from
the client and what they do::

    state      PONG          MESSAGE    CLOSE            UPGRADE (over the probe WS)
    OPEN       next ping     dispatch   -> CLOSED         -> OPEN, upgraded
    CLOSING    ignored       ignored    -> CLOSED         refused
    CLOSED     ignored       ignored    ignored           refused

Outgoing packets, already encoded, wait in one ``outbox``. Whichever transport is
active drains it: the pending long-poll GET, or the WebSocket writer once upgraded.
Because there is a single queue, an upgrade cannot reorder or lose packets: what the
last poll did not take, the WebSocket sends first.

The heartbeat is two deadlines: ``ping_interval`` after the open (or the last pong) the
server queues a PING; if no PONG arrives within ``ping_timeout`` the session closes
with "ping timeout". Deadlines live on the server's timer wheel (``heartbeat.Wheel``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import packet
from .packet import Data

if TYPE_CHECKING:
    from ..concurrency import Backend, Timer
    from .server import Server

log = logging.getLogger("flask_ioengine.engineio")

OPEN, CLOSING, CLOSED = "open", "closing", "closed"


class Socket:
    """An Engine.IO session, addressed by ``sid``, independent of its transport."""

    __slots__ = (
        "server", "aio", "sid", "request", "transport", "upgrading", "upgraded", "state",
        "outbox", "outbox_bytes", "_wake", "polling", "close_reason", "on_message",
        "on_close", "handler", "abort", "flush", "write_now", "buffered", "receiving", "reader",
        "_overflowed", "_heard", "_ping_timer", "_pong_timer", "_release_timer", "__weakref__",
    )

    def __init__(self, server: Server, sid: str, request: Any, transport: str) -> None:
        self.server = server
        self.aio: Backend = server.aio
        self.sid = sid
        self.request = request
        self.transport = transport
        self.upgrading = False
        self.upgraded = False
        self.state = OPEN
        self.outbox: list[Data] = []  # a list: 56 bytes empty (a deque takes 760)
        self.outbox_bytes = 0
        self._wake: Any = None  # created when a transport first waits (not for WebSockets)
        self.polling = False
        self.close_reason: str | None = None
        #: Called with each MESSAGE's data (str or bytes), in the reader's thread.
        self.on_message: Callable[[Data], None] | None = None
        #: Called once with the close reason.
        self.on_close: Callable[[str], None] | None = None
        #: Free for the layer above (the Socket.IO client object).
        self.handler: Any = None
        #: Set by the WebSocket transport: tears the connection down (given the reason).
        self.abort: Callable[[str], None] | None = None
        #: Set by the WebSocket transport under eventlet: writes the outbox right away.
        self.flush: Callable[[], None] | None = None
        #: Set by the WebSocket transport under eventlet: writes the outbox at once.
        self.write_now: Callable[[], None] | None = None
        #: Set by the WebSocket transport: bytes written but still waiting for the client.
        self.buffered: Callable[[], int] | None = None
        #: Set by a transport read from the hub: ``pause()``/``resume()`` its reading.
        self.reader: Any = None
        #: > 0 while the server is busy with a message of this client (and so not reading
        #: it): a PONG may be waiting unread, so the ping timeout is held off meanwhile.
        self.receiving = 0
        self._heard = False  # a packet arrived since the last PING
        self._overflowed = False
        self._ping_timer: Timer | None = None
        self._pong_timer: Timer | None = None
        self._release_timer: Timer | None = None

    def __repr__(self) -> str:
        return f"<engineio.Socket {self.sid} {self.transport} {self.state}>"

    @property
    def wake(self) -> Any:
        """Set whenever there is something for a waiting transport to do."""
        if self._wake is None:
            self._wake = self.aio.event()
        return self._wake

    def _signal(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- sending ---------------------------------------------------------------------

    def send(self, data: Data) -> bool:
        """Queue a MESSAGE (text or bytes); False when the session is not open."""
        if self.state != OPEN:
            return False
        self._queue(data if isinstance(data, bytes) else "4" + data)
        return True

    def send_encoded(self, frames: list[Data]) -> bool:
        """Queue MESSAGE packets already encoded for the wire (``"4..."`` or bytes)."""
        if self.state != OPEN:
            return False
        self.outbox.extend(frames)
        for frame in frames:
            self.outbox_bytes += len(frame)
        self._push()
        return True

    def _queue(self, encoded: Data) -> None:
        self.outbox.append(encoded)
        self.outbox_bytes += len(encoded)
        self._push()

    def _push(self) -> None:
        limit = self.server.max_write_buffer
        if self.flush is not None:
            self.flush()
            if self.outbox_bytes > limit and self.write_now is not None:
                self.write_now()  # a sender that never yields: write now, do not hoard
        else:
            self.wake.set()  # a poll may be about to wait: the event must exist
        if self.backlog() > limit:
            self.overflow()

    def backlog(self) -> int:
        """Bytes queued for this client and not yet taken by it."""
        return self.outbox_bytes + (self.buffered() if self.buffered is not None else 0)

    def overflow(self) -> None:
        """The client stopped reading: drop what waits and end the session ("buffer full")."""
        if self.state != OPEN:
            return
        log.info("engine.io %s: more than %d bytes waiting for the client, closing",
                 self.sid, self.server.max_write_buffer)
        self.state = CLOSING  # refuse further packets at once
        self._overflowed = True
        self.outbox.clear()
        self.outbox_bytes = 0
        self.aio.spawn(self.closed, "buffer full")

    def take(self, limit: int | None = None) -> list[Data]:
        """What is queued, in order (at most ``limit`` packets), removed from the outbox."""
        frames = self.outbox
        if limit is None or len(frames) <= limit:
            self.outbox = []
            self.outbox_bytes = 0
            return frames
        self.outbox = frames[limit:]
        del frames[limit:]
        self.outbox_bytes -= sum(len(f) for f in frames)
        return frames

    # -- receiving -------------------------------------------------------------------

    def receive(self, type: int, data: Data) -> None:
        """Handle one packet from the client (over whichever transport carried it)."""
        if self.state != OPEN:
            return
        self._heard = True
        if type == packet.MESSAGE:
            if self.on_message is not None:
                self.receiving += 1
                try:
                    self.on_message(data)
                finally:
                    self.receiving -= 1
        elif type == packet.PONG:
            self._on_pong()
        elif type == packet.CLOSE:
            self.closed("transport close")
        elif type == packet.NOOP:
            pass
        else:  # OPEN, PING, UPGRADE outside the probe: a client speaking nonsense
            log.info("engine.io %s: unexpected packet type %d, closing", self.sid, type)
            self.closed("parse error")

    # -- heartbeat -------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        self._ping_timer = self.server.heartbeats.call_later(self.server.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.state != OPEN:
            return
        self._heard = False
        # The pong deadline is armed first: whatever happens while sending, the session
        # cannot outlive its heartbeat.
        self._pong_timer = self.server.heartbeats.call_later(self.server.ping_timeout,
                                                             self._ping_timeout)
        try:
            self._queue(packet.PING_PACKET)
        except Exception:  # a timer must survive a failing transport: log, end this session
            log.exception("engine.io %s: sending a ping failed", self.sid)
            self.aio.spawn(self.closed, "transport error")

    def _on_pong(self) -> None:
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._ping_timer = self.server.heartbeats.call_later(self.server.ping_interval, self._ping)

    def _ping_timeout(self) -> None:
        self._pong_timer = None
        if self.state == OPEN and (self.receiving or self._heard):
            # The client is alive (it sent something since the PING, or we are holding its
            # input back): its PONG may be behind what we have not read yet. Ping again
            # (which keeps the client's own heartbeat check satisfied) and wait anew.
            self._ping()
            return
        if self.state == OPEN:
            # Timer callbacks must not block: the close handlers run user code.
            self.aio.spawn(self.closed, "ping timeout")

    # -- closing ---------------------------------------------------------------------

    def close(self, reason: str = "forced close") -> None:
        """Close from the server: the client gets a CLOSE packet, then the session ends."""
        if self.state != OPEN:
            return
        self._queue(packet.CLOSE_PACKET)
        self.state = CLOSING
        # A polling client picks the CLOSE packet up with its next GET; if it never
        # comes, the session is released after ping_timeout.
        self._release_timer = self.aio.call_later(self.server.ping_timeout, self._release)
        self._finish(reason)

    def closed(self, reason: str) -> None:
        """The session ended without a goodbye to send (client close, timeout, error)."""
        if self.state == CLOSED:
            return
        prior = self.state
        self._release()  # CLOSED, waiters woken, forgotten by the server
        if self.abort is not None:
            self.abort(reason)
        if prior == OPEN or self._overflowed:
            self._overflowed = False
            self._finish(reason)

    def _release(self) -> None:
        self.state = CLOSED
        self._signal()
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self.server.forget(self)

    def _finish(self, reason: str) -> None:
        self.close_reason = reason
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None
        log.debug("engine.io %s closed: %s", self.sid, reason)
        on_close, self.on_close, self.on_message = self.on_close, None, None
        if on_close is not None:
            try:
                on_close(reason)
            except Exception:
                log.exception("engine.io %s: close handler failed", self.sid)
        self.server.emit("close", self, reason)
