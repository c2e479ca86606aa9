"""A namespace: its sockets, rooms adapter, connection handlers and ``io.use`` middlewares."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .adapter import Adapter
from .broadcast import BroadcastOperator
from .socket import NOT_CALLED, ConnectionRefusedError, call_middleware

if TYPE_CHECKING:
    from .server import Server
    from .socket import Socket

log = logging.getLogger("flask_ioengine.socketio")

CONNECTION_EVENTS = ("connection", "connect")


class _Handlers:
    """Connection handlers and ``io.use`` middlewares (namespaces and dynamic rules)."""

    handlers: dict[str, list[Callable[..., Any]]]
    middlewares: list[Callable[..., Any]]

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """``on("connection", fn)``: ``fn(socket)`` for each socket that connects."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            key = "connection" if event in CONNECTION_EVENTS else event
            self.handlers.setdefault(key, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def use(self, fn: Callable[[Socket, Callable[..., None]], Any]) -> Callable[..., Any]:
        """Connection middleware ``fn(socket, next)``; ``next(err)`` or raising refuses
        the connection with a CONNECT_ERROR carrying ``err``'s message (and ``data``)."""
        self.middlewares.append(fn)
        return fn


class Namespace(_Handlers):
    """``io.of("/name")``: emits to and configures the sockets of one namespace."""

    def __init__(self, server: Server, name: str, adapter_class: type[Adapter]) -> None:
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self.adapter = adapter_class(self)
        self.adapter.init()
        self.middlewares: list[Callable[..., Any]] = []
        self.handlers: dict[str, list[Callable[..., Any]]] = {}

    def __repr__(self) -> str:
        return f"<socketio.Namespace {self.name}>"


    # -- broadcasting --------------------------------------------------------------------

    def _op(self) -> BroadcastOperator:
        return BroadcastOperator(self.adapter)

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._op().to(rooms)

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._op().except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self._op().volatile

    @property
    def local(self) -> BroadcastOperator:
        return self._op().local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self._op().timeout(seconds)

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> bool:
        return self._op().emit(event, *args, callback=callback)

    def send(self, *args: Any) -> bool:
        return self._op().emit("message", *args)

    def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        return self._op().emit_with_ack(event, *args)

    def fetch_sockets(self) -> list[Any]:
        return self._op().fetch_sockets()

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        self._op().sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        self._op().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        self._op().disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> None:
        """Send an event to the other nodes' ``on(event)`` handlers of this namespace."""
        self.adapter.server_side_emit(event, list(args))

    # -- lifecycle (called by Client) ----------------------------------------------------

    def add(self, socket: Socket) -> None:
        self.sockets[socket.id] = socket

    def remove(self, socket: Socket) -> None:
        self.sockets.pop(socket.id, None)

    def run_middlewares(self, socket: Socket) -> Exception | None:
        """Run ``io.use`` middlewares in order; the first error refuses the socket."""
        for fn in self.middlewares:
            try:
                result = call_middleware(fn, socket)
            except ConnectionRefusedError as exc:
                return exc
            except Exception:
                # An unexpected failure: its text stays in the log, not on the wire.
                log.exception("socket.io: connection middleware failed")
                return ConnectionRefusedError("Connection refused")
            if result is NOT_CALLED:
                return Exception("Connection refused")
            if result is not None:
                return result if isinstance(result, Exception) else Exception(str(result))
        return None

    def fire_connection(self, socket: Socket) -> None:
        for fn in list(self.handlers.get("connection", ())):
            fn(socket)


class ParentNamespace(_Handlers):
    """A dynamic namespace rule: a regex or ``fn(name, auth) -> bool``; the namespaces
    it creates share its handlers and middlewares."""

    def __init__(self, server: Server, matcher: Any, adapter_class: type[Adapter]) -> None:
        self.server = server
        self.matcher = matcher
        self.adapter_class = adapter_class
        self.middlewares: list[Callable[..., Any]] = []
        self.handlers: dict[str, list[Callable[..., Any]]] = {}
        self.children: dict[str, Namespace] = {}

    def matches(self, name: str, auth: Any) -> bool:
        if hasattr(self.matcher, "fullmatch"):
            return bool(self.matcher.fullmatch(name))
        try:
            return bool(self.matcher(name, auth))
        except Exception:
            log.exception("socket.io: dynamic namespace matcher failed")
            return False


    def create_child(self, name: str) -> Namespace:
        nsp = Namespace(self.server, name, self.adapter_class)
        nsp.handlers = self.handlers  # shared: handlers added later apply to all children
        nsp.middlewares = self.middlewares
        self.children[name] = nsp
        return nsp

    def emit(self, event: str, *args: Any) -> None:
        for nsp in list(self.children.values()):
            nsp.emit(event, *args)
