"""The WebSocket transport: our own RFC 6455 handshake (so the ``headers`` hook, the cookie
and the origin checks apply to the 101 response) over the sans-I/O ``wsframe`` codec.

Under eventlet's WSGI server (``FastHttpProtocol``) the connection is detached from its
request once open and read from the hub (``HubReader``): an idle connection costs no
green thread, and a message costs no switch until application code runs. Elsewhere the
request's thread reads (``read_loop``). Writes go straight to the socket; what the kernel
does not take waits for a drain green thread, so a client that stops reading blocks
only itself.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket as _socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import packet, wsframe
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

    __slots__ = ("sock", "raw", "aio", "parser", "lock", "deflate_threshold", "closed",
                 "close_sent", "out", "writing", "close_pending", "on_broken", "released")

    def __init__(self, sock: Any, aio: Backend, max_message: int,
                 deflate_threshold: int | None = None) -> None:
        self.sock = sock
        self.raw = getattr(sock, "fd", None) if aio.name == "eventlet" else None
        self.aio = aio
        self.parser = wsframe.Parser(max_message, deflate=deflate_threshold is not None)
        self.lock = aio.lock() if self.raw is None else None  # threads only
        #: Compress messages at least this long (None: permessage-deflate not in use).
        self.deflate_threshold = deflate_threshold
        self.closed = False
        self.close_sent = False
        self.out = bytearray()
        self.writing = False
        self.close_pending = False
        #: Called (in a green thread of its own) when a buffered write fails.
        self.on_broken: Any = None
        #: Reading is over and the socket is ours to close (a detached connection).
        self.released = False

    @property
    def buffered(self) -> int:
        return len(self.out)

    def _write(self, data: bytes) -> None:
        if self.closed:
            raise WebSocketClosed("closed")
        if self.lock is not None:
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
        assert self.raw is not None
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
        if self.released:
            self._close_socket()

    def send(self, frames: list[Data]) -> None:
        """Write messages (str → text frame, bytes → binary frame) in one write."""
        if self.closed:
            raise WebSocketClosed("closed")
        threshold = self.deflate_threshold
        framed = wsframe.shared_frame
        if len(frames) == 1:
            self._write(framed(frames[0], threshold))
        else:
            self._write(b"".join([framed(f, threshold) for f in frames]))

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame (if still possible) and shut the socket down once what is
        buffered has been written."""
        if not self.close_sent and not self.closed:
            self.close_sent = True
            try:
                self._write(wsframe.close_frame(code, reason or ""))
            except WebSocketClosed:
                pass
        if self.writing:
            self.close_pending = True
        else:
            self.shutdown()

    def abort(self, reason: str) -> None:
        """End the connection for ``reason``: a protocol error is answered with close code
        1002 when the client can still hear it; otherwise the TCP connection just ends."""
        if reason == "parse error" and not self.writing:
            self.close(wsframe.PROTOCOL_ERROR)
        else:
            self.shutdown()

    def shutdown(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass

    def release(self) -> None:
        """Reading is over for good: close the socket once what is buffered is written
        (detached connections; otherwise the WSGI server closes it)."""
        self.released = True
        if not self.writing:
            self._close_socket()

    def _close_socket(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def next_message(self) -> Data | None:
        """The next whole message among the bytes already received, or None; pings are
        answered and a close frame returned on the way. Raises WebSocketClosed when the
        connection ends (a close frame, a protocol error)."""
        parser = self.parser
        while True:
            try:
                event = parser.next()
            except wsframe.FrameError as err:
                log.info("websocket: %s, closing with %d", err.reason, err.code)
                self.close(err.code)
                raise WebSocketClosed(err.reason) from None
            if event is None:
                return None
            kind = event[0]
            if kind == "text" or kind == "binary":
                return event[1]
            if kind == "ping":
                self._write(wsframe.frame(wsframe.PONG, event[1]))
            elif kind == "close":
                self.close(1000 if event[1] == 1005 else event[1])
                raise WebSocketClosed("closed by the client")

    def receive(self) -> Data:
        """The next whole message; raises WebSocketClosed when the connection ends."""
        while True:
            message = self.next_message()
            if message is not None:
                return message
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
            self.parser.feed(data)


def deliver(socket: Socket, message: Data) -> bool:
    """Decode one Engine.IO packet and hand it to the session (what may run application
    code, in a green thread when called from the hub); False for a malformed packet."""
    try:
        type, data = packet.decode(message)
    except packet.PacketError as err:
        log.info("engine.io %s: bad packet (%s), closing", socket.sid, err)
        return False
    if type == packet.MESSAGE or type == packet.PONG or type == packet.NOOP:
        socket.receive(type, data)  # the layer above sends application code to green threads
    else:
        socket.aio.run_now(socket.receive, type, data)
    return True


class HubReader:
    """Reads a detached WebSocket from eventlet's hub: a persistent read listener calls
    ``_readable``; frames are decoded there and handed to the session, whose layer above
    runs application code in pooled green threads (``Backend.start``/``run_now``), never
    in the hub. At most ``BURST`` messages are handled per turn, then other connections
    get theirs."""

    BURST = 64

    __slots__ = ("ws", "raw", "socket", "aio", "watch", "ended", "_resume_timer")

    def __init__(self, ws: WebSocket, socket: Socket) -> None:
        assert ws.raw is not None, "a non-blocking socket (eventlet)"
        self.ws = ws
        self.raw: Any = ws.raw
        self.socket = socket
        self.aio: Any = socket.aio
        self.watch: Any = None
        self.ended = False
        self._resume_timer: Any = None

    def start(self) -> None:
        """Listen, after handling what the upgrade left in the parser."""
        self.socket.reader = self
        self.watch = self.aio.watch(self.raw.fileno(), self._readable)
        self._process()

    def pause(self) -> None:
        """Stop reading this client for now (too much of its input is waiting)."""
        if self.watch is not None:
            self.watch.pause()

    def resume(self) -> None:
        if self.ended or self.watch is None or self.watch.active:
            return
        self.watch.resume()
        self._later()  # frames already parsed may wait without the socket being readable

    def _later(self) -> None:
        if self._resume_timer is None:
            self._resume_timer = self.aio.call_later(0, self._continue)

    def _continue(self) -> None:
        self._resume_timer = None
        if not self.ended and self.watch is not None and self.watch.active:
            aio = self.aio
            aio.begin_batch()
            try:
                self._process()
            finally:
                aio.end_batch()

    def _readable(self) -> None:
        try:
            data = self.raw.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._end("transport close")
            return
        if not data:
            self._end("transport close")
            return
        self.ws.parser.feed(data)
        self._process()

    def _process(self) -> None:
        ws, socket = self.ws, self.socket
        count = 0
        while not self.ended:
            if socket.state == "closed":
                self._end("transport close")
                return
            if self.watch is not None and not self.watch.active:
                return  # paused: the rest waits in the parser
            try:
                message = ws.next_message()
            except WebSocketClosed:
                self._end("transport close")
                return
            if message is None:
                return
            if not deliver(socket, message):
                self._end("parse error")
                return
            count += 1
            if count >= self.BURST:
                self._later()
                return

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        if self.watch is not None:
            self.watch.cancel()
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        socket = self.socket
        if socket.state != "closed":
            self.aio.run_now(socket.closed, reason)  # may run handlers: not in the hub
        self.ws.shutdown()
        self.ws.release()


def read_loop(ws: WebSocket, socket: Socket, sleep: Callable[[float], None]) -> None:
    """Read in the calling thread until the session ends (threads, foreign servers)."""
    count = 0
    try:
        while socket.state != "closed":
            count += 1
            if count % 16 == 0:
                sleep(0)  # a flooding client must not monopolize the hub
            if not deliver(socket, ws.receive()):
                socket.closed("parse error")
                break
    except WebSocketClosed:
        socket.closed("transport close")
    except Exception:
        log.exception("engine.io %s: websocket reader failed", socket.sid)
        socket.closed("transport error")
    ws.shutdown()


def attach(ws: WebSocket, socket: Socket) -> None:
    """Make ``ws`` the session's transport. Under eventlet, what is queued is written as
    soon as the sending green thread yields, every packet queued meanwhile in one write
    (no thread, no switch); under threads, by a writer thread."""
    if ws.raw is None:
        socket.aio.spawn(writer, ws, socket)
        return
    aio = socket.aio
    pending = [False]

    def broken() -> None:
        socket.closed("transport close")

    def flush() -> None:
        if not pending[0]:
            pending[0] = True
            aio.defer(write)

    def write() -> None:
        pending[0] = False
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
    socket.write_now = write
    write()


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
