"""The WebSocket transport: our own RFC 6455 handshake (so the ``headers`` hook, the cookie
and the origin checks apply to the 101 response) and wsproto for the framing.

The request's green thread reads; a second one writes what the session queues, so a
client that stops reading blocks only its own writer.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket as _socket
from typing import TYPE_CHECKING, Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason

from .packet import CLOSE_PACKET, Data

if TYPE_CHECKING:
    from ..concurrency import Backend
    from .socket import Socket

log = logging.getLogger("flask_ioengine.engineio")

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``."""
    digest = hashlib.sha1(key.encode("ascii") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def valid_upgrade(environ: dict[str, Any]) -> str | None:
    """The client's key when ``environ`` is a well-formed WebSocket upgrade, else None."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    if "websocket" not in environ.get("HTTP_UPGRADE", "").lower():
        return None
    if "upgrade" not in environ.get("HTTP_CONNECTION", "").lower():
        return None
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
        return None
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except ValueError:
        return None
    return key


def raw_socket(environ: dict[str, Any]) -> Any:
    """The client's TCP socket, from eventlet's or werkzeug's WSGI server."""
    if "eventlet.input" in environ:
        return environ["eventlet.input"].get_socket()
    if "werkzeug.socket" in environ:
        return environ["werkzeug.socket"]
    if "gunicorn.socket" in environ:
        return environ["gunicorn.socket"]
    return None


class WebSocketClosed(Exception):
    """The connection is gone (closed by either side or broken)."""


class WebSocket:
    """A server-side WebSocket over a connected socket, after the 101 was sent.

    Under eventlet, writes go straight to the non-blocking socket from whichever green
    thread sends; only when the kernel buffer is full does the rest wait in ``out`` for
    a drain green thread (which exists only then). ``buffered`` is what waits.
    Under threads (``flask run``) writes are blocking and serialized by a lock.
    """

    __slots__ = ("sock", "raw", "aio", "conn", "lock", "max_message", "_parts", "_size",
                 "closed", "out", "writing", "close_pending", "on_broken")

    def __init__(self, sock: Any, aio: Backend, max_message: int) -> None:
        self.sock = sock
        self.raw = getattr(sock, "fd", None) if aio.name == "eventlet" else None
        self.aio = aio
        self.conn = Connection(ConnectionType.SERVER)
        self.lock = aio.lock()
        self.max_message = max_message
        self._parts: list[Any] = []
        self._size = 0
        self.closed = False
        self.out = bytearray()
        self.writing = False
        self.close_pending = False
        #: Called (in a green thread of its own) when a buffered write fails.
        self.on_broken: Any = None

    @property
    def buffered(self) -> int:
        return len(self.out)

    def _write(self, data: bytes) -> None:
        if self.closed:
            raise WebSocketClosed("closed")
        if self.raw is None:
            with self.lock:
                try:
                    self.sock.sendall(data)
                except OSError as err:
                    self.closed = True
                    raise WebSocketClosed(str(err)) from None
            return
        if self.writing:
            self.out += data
            return
        try:
            sent = self.raw.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as err:
            self.closed = True
            raise WebSocketClosed(str(err)) from None
        if sent < len(data):
            self.out += memoryview(data)[sent:]
            self.writing = True
            self.aio.spawn(self._drain)

    def _drain(self) -> None:
        try:
            while self.out:
                chunk = bytes(self.out)
                self.out.clear()
                self.sock.sendall(chunk)
        except OSError:
            self.closed = True
            self.out.clear()
            if self.on_broken is not None:
                self.on_broken()
        finally:
            self.writing = False
        if self.close_pending:
            self.shutdown()

    def send(self, frames: list[Data]) -> None:
        """Write messages (str → text frame, bytes → binary frame) in one write."""
        if self.closed:
            raise WebSocketClosed("closed")
        out = b"".join(self.conn.send(Message(data=f)) for f in frames)  # type: ignore[type-var]
        self._write(out)

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame (if still possible) and shut the socket down once what is
        buffered has been written."""
        if self.conn.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            try:
                self._write(self.conn.send(CloseConnection(code=code, reason=reason)))
            except WebSocketClosed:
                pass
        if self.writing:
            self.close_pending = True
        else:
            self.shutdown()

    def shutdown(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass

    def receive(self) -> Data:
        """The next whole message; raises WebSocketClosed when the connection ends."""
        while True:
            for event in self.conn.events():
                if isinstance(event, (TextMessage, BytesMessage)):
                    self._size += len(event.data)
                    if self._size > self.max_message:
                        log.info("websocket: message over %d bytes, closing", self.max_message)
                        self.close(CloseReason.MESSAGE_TOO_BIG)
                        raise WebSocketClosed("message too big")
                    if not event.message_finished:
                        self._parts.append(event.data)
                        continue
                    parts, self._parts, self._size = self._parts, [], 0
                    if not parts:
                        return bytes(event.data) if isinstance(event, BytesMessage) else event.data
                    parts.append(event.data)
                    if isinstance(event, TextMessage):
                        return "".join(parts)
                    return b"".join(parts)
                if isinstance(event, Ping):
                    self._write(self.conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if self.conn.state is ConnectionState.REMOTE_CLOSING:
                        try:
                            self._write(self.conn.send(event.response()))
                        except WebSocketClosed:
                            pass
                        self.shutdown()
                    else:  # a protocol violation wsproto detected: answer with its code
                        log.info("websocket: protocol error (%s), closing", event.reason)
                        self.close(event.code)
                    raise WebSocketClosed(event.reason or "closed")
            if self.closed:
                raise WebSocketClosed("closed")
            try:
                data = self.sock.recv(65536)
            except OSError as err:
                self.closed = True
                raise WebSocketClosed(str(err)) from None
            if not data:
                self.closed = True
                raise WebSocketClosed("connection lost")
            self.conn.receive_data(data)


def attach(ws: WebSocket, socket: Socket) -> None:
    """Make ``ws`` the session's transport: under eventlet, queued packets are written
    at once by the sender; under threads, by a writer thread."""
    if ws.raw is None:
        socket.aio.spawn(writer, ws, socket)
        return

    def broken() -> None:
        socket.closed("transport close")

    def flush() -> None:
        frames = socket.take()
        if not frames:
            return
        try:
            ws.send(frames)
        except WebSocketClosed:
            socket.aio.spawn(broken)  # may run in a hub timer: never run handlers here
            return
        if frames[-1] == CLOSE_PACKET:
            ws.close()

    ws.on_broken = broken
    socket.buffered = lambda: len(ws.out)
    socket.flush = flush
    flush()


def writer(ws: WebSocket, socket: Socket) -> None:
    """Drain the session's outbox into the WebSocket until the session ends (threads)."""
    try:
        while True:
            if not socket.outbox and socket.state == "open":
                socket.wake.clear()
                if not socket.outbox and socket.state == "open":
                    socket.wake.wait()
            frames = socket.take()
            if frames:
                ws.send(frames)
            if socket.state != "open":
                break
    except WebSocketClosed:
        socket.closed("transport close")
        return
    except Exception:
        log.exception("engine.io %s: websocket writer failed", socket.sid)
        socket.closed("transport error")
    ws.close()
