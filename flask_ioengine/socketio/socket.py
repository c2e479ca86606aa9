"""A Socket.IO socket: one client connected to one namespace.

Its handlers run in the client's ordered dispatcher; its ``emit`` may be called from any
green thread. Acknowledgements: a handler's return value answers the client's ack; a
``callback=`` (or ``emit_with_ack``) receives the client's answer.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import packet as sio
from .adapter import BroadcastOptions, engine_frames
from .broadcast import BroadcastOperator
from .packet import RESERVED_EVENTS

if TYPE_CHECKING:
    from ..engineio.socket import Socket as EngineSocket
    from .client import Client
    from .namespace import Namespace

log = logging.getLogger("flask_ioengine.socketio")



class AckTimeoutError(TimeoutError):
    """No acknowledgement arrived in time (``emit_with_ack`` / ``timeout()``)."""

    def __init__(self, message: str = "operation has timed out") -> None:
        super().__init__(message)


class ConnectionRefusedError(Exception):
    """Raise (or pass to ``next``) in ``io.use`` middleware to refuse a connection; the
    client's ``connect_error`` gets ``message`` and ``data``."""

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


_ARITY: dict[Any, int | None] = {}


def _positional_arity(fn: Callable[..., Any]) -> int | None:
    """How many positional arguments ``fn`` takes; None when it takes ``*args``.
    Cached by code object: handlers defined in a connection handler are new functions
    for every connection but share their code."""
    code = getattr(fn, "__code__", None)
    key = (code, getattr(fn, "__self__", None) is not None) if code is not None else None
    if key is not None and key in _ARITY:
        return _ARITY[key]
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        n = None
    else:
        n = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    if key is not None:
        if len(_ARITY) > 10_000:
            _ARITY.clear()
        _ARITY[key] = n
    return n


#: What ``call_middleware`` returns when the middleware never called ``next``.
NOT_CALLED: Any = object()


def call_middleware(fn: Callable[[Any, Callable[..., None]], Any], arg: Any) -> Any:
    """Call a Node-style middleware ``fn(arg, next)``: the error it passed to ``next``
    (None to go on), or ``NOT_CALLED``. Exceptions it raises propagate."""
    outcome: list[Any] = []
    fn(arg, lambda err=None: outcome.append(err))
    return outcome[0] if outcome else NOT_CALLED


def adapt_arity(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn`` so it accepts any number of positional arguments, passing only as many
    as it declares (a handler ``def f():`` tolerates a client that sends data)."""
    try:
        n = _positional_arity(fn)
    except (TypeError, ValueError):
        return fn
    if n is None:
        return fn

    def call(*args: Any) -> Any:
        return fn(*args[:n])

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call


def ack_args(value: Any) -> list[Any]:
    """A handler's return value as acknowledgement arguments."""
    if value is None:
        return []
    if isinstance(value, tuple):
        return list(value)
    return [value]


def unpack_ack(args: list[Any]) -> Any:
    """``emit_with_ack``'s result: nothing → None, one value → it, several → a tuple."""
    if not args:
        return None
    return args[0] if len(args) == 1 else tuple(args)


class Socket:
    """The server side of one client in one namespace (``io.on("connection")`` gets it)."""

    __slots__ = (
        "nsp", "client", "id", "_handshake", "_auth", "_issued", "data", "connected", "_handlers", "_any",
        "_middlewares", "_acks", "_ack_ids", "__weakref__",
    )

    def __init__(self, nsp: Namespace, client: Client, auth: Any) -> None:
        self.nsp = nsp
        self.client = client
        self.id = secrets.token_urlsafe(15)
        self._auth = auth
        self._issued = time.time()
        self._handshake: dict[str, Any] | None = None  # built on first use
        #: Free for the application (like Node's ``socket.data``); sent by fetch_sockets.
        self.data: dict[str, Any] = {}
        self.connected = False
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._any: list[Callable[..., Any]] = []
        self._middlewares: list[Callable[..., Any]] = []
        self._acks: dict[int, Callable[..., Any]] = {}
        self._ack_ids = itertools.count()

    def __repr__(self) -> str:
        return f"<socketio.Socket {self.id} {self.nsp.name}>"

    # -- what the application sees -------------------------------------------------------

    @property
    def handshake(self) -> dict[str, Any]:
        """``headers``, ``time``, ``address``, ``xdomain``, ``secure``, ``issued``, ``url``,
        ``query`` and ``auth`` of the connection, like Node's ``socket.handshake``."""
        if self._handshake is None:
            self._handshake = self.client.handshake(self._auth, self._issued)
        return self._handshake

    @property
    def conn(self) -> EngineSocket:
        """The Engine.IO session (``socket.conn.close()`` closes the transport)."""
        return self.client.conn

    @property
    def request(self) -> Any:
        """The HTTP request of the handshake (a Flask ``Request`` under the extension)."""
        return self.client.conn.request

    @property
    def rooms(self) -> set[str]:
        return self.nsp.adapter.socket_rooms(self.id)

    @property
    def disconnected(self) -> bool:
        return not self.connected

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a handler for a client event; its return value is the ack."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers.setdefault(event, []).append(adapt_arity(fn))
            return fn

        return register(handler) if handler is not None else register

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        if handler is None:
            self._handlers.pop(event, None)
            return
        self._handlers[event] = [
            h for h in self._handlers.get(event, []) if getattr(h, "__wrapped__", h) is not handler
        ]

    def on_any(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """A catch-all ``handler(event, *args)`` run before the event's own handlers."""
        self._any.append(handler)
        return handler

    def use(self, fn: Callable[[list[Any], Callable[..., None]], Any]) -> Callable[..., Any]:
        """Packet middleware ``fn([event, *args], next)``; ``next(err)`` drops the packet
        and emits ``"error"`` on this socket."""
        self._middlewares.append(fn)
        return fn

    def join(self, rooms: str | Iterable[str]) -> None:
        self.nsp.adapter.add_all(self.id, [rooms] if isinstance(rooms, str) else list(rooms))

    def leave(self, room: str) -> None:
        self.nsp.adapter.delete(self.id, room)

    # -- emitting ------------------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> bool:
        """Send an event to this client; ``callback(*ack_args)`` gets its acknowledgement."""
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        p = sio.Packet(sio.EVENT, self.nsp.name, [event, *args])
        if callback is not None:
            p.id = self._register_ack(callback)
        return self.client.write_frames(engine_frames(p))

    send = None  # set below: ``socket.send(*args)`` emits "message"

    def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Emit and wait for the acknowledgement (raises AckTimeoutError after ``timeout``)."""
        aio = self.client.aio
        done = aio.event()
        result: list[Any] = []

        def callback(*ack: Any) -> None:
            result.append(list(ack))
            done.set()

        p = sio.Packet(sio.EVENT, self.nsp.name, [event, *args])
        ack_id = self._register_ack(callback)
        p.id = ack_id
        self.client.write_frames(engine_frames(p))
        if not done.wait(timeout):
            self._acks.pop(ack_id, None)
            raise AckTimeoutError()
        return unpack_ack(result[0])

    def timeout(self, seconds: float) -> _TimedEmitter:
        """``socket.timeout(5).emit(ev, *args, callback=fn)``: ``fn(err, *ack_args)``."""
        return _TimedEmitter(self, seconds)

    def _register_ack(self, callback: Callable[..., Any]) -> int:
        ack_id = next(self._ack_ids)
        self._acks[ack_id] = callback
        return ack_id

    def emit_packet_with_ack(self, p: sio.Packet, ack: Callable[[list[Any]], None]) -> None:
        """Used by broadcasts with acks: send a copy of ``p`` with our own ack id."""
        mine = sio.Packet(p.type, p.nsp, p.data)
        mine.id = self._register_ack(lambda *args: ack(list(args)))
        self.client.write_frames(engine_frames(mine))

    # -- broadcasting from this socket ---------------------------------------------------

    def to(self, room: str | Iterable[str]) -> BroadcastOperator:
        """Everyone in ``room`` except this socket."""
        return BroadcastOperator(self.nsp.adapter, BroadcastOptions(except_={self.id})).to(room)

    in_ = to

    def except_(self, room: str | Iterable[str]) -> BroadcastOperator:
        return BroadcastOperator(self.nsp.adapter, BroadcastOptions(except_={self.id})).except_(room)

    @property
    def broadcast(self) -> BroadcastOperator:
        """Everyone in the namespace except this socket."""
        return BroadcastOperator(self.nsp.adapter, BroadcastOptions(except_={self.id}))

    @property
    def volatile(self) -> _VolatileEmitter:
        return _VolatileEmitter(self)

    # -- disconnecting -------------------------------------------------------------------

    def disconnect(self, close: bool = False) -> None:
        """Leave the namespace ("server namespace disconnect"); ``close=True`` also closes
        the underlying connection."""
        if not self.connected:
            return
        if close:
            self.client.disconnect()
            return
        self.client.write_frames(engine_frames(sio.Packet(sio.DISCONNECT, self.nsp.name)))
        self.on_close("server namespace disconnect")

    def on_close(self, reason: str) -> None:
        """Leave every room, forget the client, run ``disconnect`` handlers (once)."""
        if not self.connected:
            return
        self.connected = False
        self.client.call(self, self._fire_reserved, "disconnecting", reason)
        self.nsp.adapter.del_all(self.id)
        self.nsp.remove(self)
        self.client.remove(self)
        self._acks.clear()
        self.client.call(self, self._fire_reserved, "disconnect", reason)

    def _fire_reserved(self, event: str, *args: Any) -> None:
        for fn in list(self._handlers.get(event, ())):
            try:
                fn(*args)
            except Exception:
                log.exception("socket.io %s: %r handler failed", self.id, event)

    # -- packets from the client (called by Client, in order) ----------------------------

    def on_packet(self, p: sio.Packet) -> None:
        if p.type in (sio.EVENT, sio.BINARY_EVENT):
            self._on_event(p)
        elif p.type in (sio.ACK, sio.BINARY_ACK):
            self._on_ack(p)
        elif p.type == sio.DISCONNECT:
            self.on_close("client namespace disconnect")
        else:  # CONNECT_ERROR: only servers send it
            log.info("socket.io %s: CONNECT_ERROR from a client, ignored", self.id)

    def _on_ack(self, p: sio.Packet) -> None:
        callback = self._acks.pop(p.id, None) if p.id is not None else None
        if callback is None:
            log.debug("socket.io %s: ack %s for nothing", self.id, p.id)
            return
        try:
            callback(*p.data)
        except Exception:
            log.exception("socket.io %s: ack callback failed", self.id)

    def _on_event(self, p: sio.Packet) -> None:
        args: list[Any] = p.data
        if self._middlewares:
            args = self._run_middlewares(args)
            if not args:
                return
        if not isinstance(args[0], str):
            args = [str(args[0]), *args[1:]]
        event = args[0]
        for fn in self._any:
            fn(*args)
        handlers = self._handlers.get(event)
        result = None
        if handlers:
            for fn in handlers:
                result = fn(*args[1:])
        if p.id is not None and self.connected:
            ack = sio.Packet(sio.ACK, self.nsp.name, ack_args(result), p.id)
            self.client.write_frames(engine_frames(ack))

    def _run_middlewares(self, args: list[Any]) -> list[Any]:
        for fn in self._middlewares:
            try:
                result = call_middleware(fn, args)
            except Exception as exc:  # a middleware raising is like next(exc)
                result = exc
            if result is NOT_CALLED:
                return []
            if result is not None:
                self._fire_reserved("error", result)
                return []
        return args


def _send(self: Socket, *args: Any, callback: Callable[..., Any] | None = None) -> bool:
    """``socket.send(*args)``: emit the ``"message"`` event."""
    return self.emit("message", *args, callback=callback)


Socket.send = _send  # type: ignore[assignment]


class _TimedEmitter:
    __slots__ = ("socket", "seconds")

    def __init__(self, socket: Socket, seconds: float) -> None:
        self.socket, self.seconds = socket, seconds

    def emit(self, event: str, *args: Any, callback: Callable[..., Any]) -> None:
        socket = self.socket
        state = {"done": False}

        def answered(*ack: Any) -> None:
            if not state["done"]:
                state["done"] = True
                timer.cancel()
                callback(None, *ack)

        def expired() -> None:
            if not state["done"]:
                state["done"] = True
                socket._acks.pop(ack_id, None)
                socket.client.aio.spawn(callback, AckTimeoutError())

        p = sio.Packet(sio.EVENT, socket.nsp.name, [event, *args])
        ack_id = socket._register_ack(answered)
        p.id = ack_id
        timer = socket.client.aio.call_later(self.seconds, expired)
        socket.client.write_frames(engine_frames(p))

    def emit_with_ack(self, event: str, *args: Any) -> Any:
        return self.socket.emit_with_ack(event, *args, timeout=self.seconds)


class _VolatileEmitter:
    __slots__ = ("socket",)

    def __init__(self, socket: Socket) -> None:
        self.socket = socket

    def emit(self, event: str, *args: Any) -> bool:
        p = sio.Packet(sio.EVENT, self.socket.nsp.name, [event, *args])
        return self.socket.client.write_frames(engine_frames(p), volatile=True)
