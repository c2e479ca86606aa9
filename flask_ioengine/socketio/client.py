"""One Engine.IO connection seen by Socket.IO: decodes packets, connects namespaces and
dispatches events in order.

Packets are handled in arrival order by one dispatcher green thread that exists only
while there is work, so a handler that blocks (a database call) delays only this
connection, and the reader stays free to take acknowledgements (``emit_with_ack`` in a
handler does not deadlock).
"""

from __future__ import annotations

import logging
from collections import deque
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from . import packet as sio
from .adapter import engine_frames
from .socket import Socket

if TYPE_CHECKING:
    from ..engineio.socket import Socket as EngineSocket
    from .server import Server

log = logging.getLogger("flask_ioengine.socketio")

_CLOSE = object()


class Client:
    __slots__ = ("server", "conn", "aio", "decoder", "sockets", "_queue", "_running",
                 "_paused", "_connect_timer", "context", "inline", "__weakref__")

    def __init__(self, server: Server, conn: EngineSocket) -> None:
        self.server = server
        self.conn = conn
        self.aio = server.aio
        self.decoder = sio.Decoder(max_attachments=server.max_attachments)
        self.sockets: dict[str, Socket] = {}
        self._queue: deque[Any] | None = None  # while there is work (an idle client has none)
        self._running = False
        self._paused: Any = None
        #: Handle packets in the caller's thread, at once (the in-process test client).
        self.inline = False
        #: Free for the server's ``call_handler`` (the Flask extension caches there).
        self.context: Any = None
        conn.handler = self
        conn.on_message = self._on_message
        conn.on_close = self._on_close
        self._connect_timer: Any = self.aio.call_later(server.connect_timeout, self._no_connect)

    def __repr__(self) -> str:
        return f"<socketio.Client {self.conn.sid}>"

    # -- input (reader thread) -----------------------------------------------------------

    def _on_message(self, data: str | bytes) -> None:
        try:
            p = self.decoder.feed(data)
        except sio.PacketError as err:
            log.info("socket.io %s: bad packet (%s), closing", self.conn.sid, err)
            self.conn.close("parse error")
            return
        if p is None:
            return
        if p.type in (sio.ACK, sio.BINARY_ACK):
            socket = self.sockets.get(p.nsp)
            if socket is not None:  # at once, even while a handler waits (emit_with_ack)
                self.aio.run_now(self.call, socket, socket.on_packet, p)
            return
        self._enqueue(p)

    def _on_close(self, reason: str) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        self._enqueue((_CLOSE, reason))

    def _enqueue(self, item: Any) -> None:
        if self.inline:
            self._process(item)
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(item)
        if not self._running:
            self._running = True
            self.aio.start(self._drain)
        elif (len(queue) > self.server.max_queued_events and item.__class__ is not tuple
              and self._paused is None):
            # Too many events waiting: stop reading this client until half are handled
            # (TCP pushes back on it); nothing is dropped.
            reader = self.conn.reader
            if reader is not None:  # read from the hub: stop listening
                self._paused = reader
                reader.pause()
                return
            paused = self._paused = self.aio.event()
            paused.wait(30.0)
            self._paused = None

    def _drain(self) -> None:
        queue = self._queue
        assert queue is not None
        count = 0
        while True:
            while queue:
                item = queue.popleft()
                try:
                    self._process(item)
                except Exception:
                    log.exception("socket.io %s: dispatch failed", self.conn.sid)
                count += 1
                if count % 16 == 0:
                    self.aio.sleep(0)  # let other connections run between bursts
                if self._paused is not None and len(queue) <= self.server.max_queued_events // 2:
                    self._resume()
            self._running = False
            if not queue:
                if self._queue is queue:
                    self._queue = None
                return
            self._running = True

    def _resume(self) -> None:
        paused = self._paused
        if paused is self.conn.reader:
            self._paused = None
            paused.resume()
        else:
            paused.set()  # the reading thread clears it

    def _process(self, item: Any) -> None:
        if isinstance(item, tuple):
            reason = item[1]
            for socket in list(self.sockets.values()):
                socket.on_close(reason)
            return
        p: sio.Packet = item
        if p.type == sio.CONNECT:
            self._connect(p)
            return
        target = self.sockets.get(p.nsp)
        if target is None:
            log.info("socket.io %s: packet for namespace %r not joined, ignored",
                     self.conn.sid, p.nsp[:64])
            return
        self.call(target, target.on_packet, p)

    # -- namespaces ----------------------------------------------------------------------

    def _no_connect(self) -> None:
        self._connect_timer = None
        if not self.sockets and self.conn.state == "open":
            log.info("socket.io %s: no CONNECT in time, closing", self.conn.sid)
            self.aio.spawn(self.conn.close, "forced close")

    def _connect(self, p: sio.Packet) -> None:
        if p.nsp in self.sockets:
            log.info("socket.io %s: second CONNECT to %r ignored", self.conn.sid, p.nsp[:64])
            return
        auth = p.data if isinstance(p.data, dict) else {}
        nsp = self.server.namespace_for(p.nsp, auth)
        if nsp is None:
            log.info("socket.io %s: CONNECT to unknown namespace %r refused",
                     self.conn.sid, p.nsp[:64])
            self._connect_error(p.nsp, {"message": "Invalid namespace"})
            return
        socket = Socket(nsp, self, auth)
        err = self.call(socket, nsp.run_middlewares, socket)
        if err is not None:
            log.info("socket.io %s: connection to %r refused by a middleware: %r",
                     self.conn.sid, p.nsp[:64], err)
            message = getattr(err, "message", None) or str(err) or "Connection refused"
            body: dict[str, Any] = {"message": message}
            data = getattr(err, "data", None)
            if data is not None:
                body["data"] = data
            self._connect_error(p.nsp, body)
            return
        if self.conn.state != "open":
            return
        if self._connect_timer is not None:  # only a successful CONNECT stops the clock
            self._connect_timer.cancel()
            self._connect_timer = None
        self.sockets[nsp.name] = socket
        nsp.add(socket)
        socket.connected = True
        socket.join(socket.id)
        self.write_frames(engine_frames(sio.Packet(sio.CONNECT, nsp.name, {"sid": socket.id})))
        self.call(socket, nsp.fire_connection, socket)

    def _connect_error(self, nsp: str, body: dict[str, Any]) -> None:
        self.write_frames(engine_frames(sio.Packet(sio.CONNECT_ERROR, nsp, body)))

    def remove(self, socket: Socket) -> None:
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    def disconnect(self) -> None:
        """Disconnect every namespace, then close the connection."""
        for socket in list(self.sockets.values()):
            socket.disconnect()
        self.conn.close("forced server close")

    # -- output --------------------------------------------------------------------------

    def write_frames(self, frames: list[str | bytes], volatile: bool = False) -> bool:
        conn = self.conn
        if volatile and (conn.backlog() or conn.upgrading):
            return False  # volatile packets are dropped first when the client lags
        return conn.send_encoded(frames)

    # -- helpers -------------------------------------------------------------------------

    def call(self, socket: Socket, fn: Any, *args: Any) -> Any:
        """Run application code for ``socket`` in the server's handler context."""
        try:
            return self.server.call_handler(socket, fn, *args)
        except Exception:
            log.exception("socket.io %s: handler failed", socket.id)
            return None

    def handshake(self, auth: Any, issued: float) -> dict[str, Any]:
        request = self.conn.request
        environ = request.environ
        query = {k: v for k, v in request.args.items()}
        return {
            "headers": dict(request.headers.items()),
            "time": formatdate(issued, usegmt=True),
            "address": environ.get("REMOTE_ADDR"),
            "xdomain": bool(environ.get("HTTP_ORIGIN")),
            "secure": environ.get("wsgi.url_scheme") == "https",
            "issued": int(issued * 1000),
            "url": environ.get("PATH_INFO", "") + (
                "?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""),
            "query": query,
            "auth": auth,
        }
