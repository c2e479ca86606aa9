"""Adapters for several server nodes: what an operation must tell the other nodes, and
how it travels (JSON, never pickle).

``ClusterAdapter`` keeps the in-memory rooms of :class:`~..adapter.Adapter` for the
sockets of this node and forwards every operation that may concern sockets elsewhere:
``broadcast``, ``add_sockets``/``del_sockets`` (``sockets_join``/``sockets_leave``),
``disconnect_sockets``, ``server_side_emit``, and the two requests that need answers,
``fetch_sockets`` and ``broadcast_with_ack``. Local work always happens first; only then
is the message handed to the transport, so a slow or absent transport never delays the
sockets of this node. A transport (``adapters.redis``) subclasses it and implements
``send`` and ``remote_node_count``, and feeds what it receives to ``on_cluster_message``.

Wire format, one JSON object per message (UTF-8)::

    {"v": 1, "uid": <sender node id>, "type": <operation>, ...fields}

- a Socket.IO packet travels in its own wire encoding: ``"packet": [text, b64, ...]``,
  the Socket.IO v5 text (binary values replaced by placeholders) followed by each
  binary attachment in base64; a receiving node writes it to its sockets as is;
- any other value (ack arguments, ``server_side_emit`` arguments, ``socket.data``,
  ``handshake``) is JSON where ``bytes`` become ``{"$b": "<base64>"}`` and a dict that
  would be mistaken for such a tag is wrapped as ``{"$d": {...}}`` (see ``pack``).

Nothing is ever unpickled or evaluated: a message from the queue can at worst be a bad
message, logged and ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .. import packet as sio
from ..adapter import Adapter, BroadcastOptions
from ..broadcast import BroadcastOperator

if TYPE_CHECKING:
    from ..namespace import Namespace
    from ..server import Server

log = logging.getLogger("flask_ioengine.socketio.cluster")

WIRE_VERSION = 1

#: Events a server-side emit may not use (they mean something to the namespace itself).
RESERVED_SERVER_EVENTS = frozenset({
    "connect", "connection", "disconnect", "disconnecting", "new_namespace",
})

_BINARY = (bytes, bytearray, memoryview)
_TAGS = ({"$b"}, {"$d"})


class ClusterMessageError(ValueError):
    """A message from the cluster that does not follow the wire format."""


class RequestTimeoutError(TimeoutError):
    """Not every node answered a cluster request (``fetch_sockets``) in time."""


# ----------------------------------------------------------------------- value codec


def pack(value: Any) -> Any:
    """``value`` as plain JSON data: bytes become ``{"$b": base64}``; a dict whose only
    key is ``"$b"`` or ``"$d"`` is escaped as ``{"$d": dict}``. Tuples become lists.
    Raises TypeError for what JSON cannot carry."""
    if isinstance(value, _BINARY):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [pack(item) for item in value]
    if isinstance(value, dict):
        packed = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict keys must be strings, not {type(key).__name__}")
            packed[key] = pack(item)
        return {"$d": packed} if set(packed) in _TAGS else packed
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"Object of type {type(value).__name__} cannot cross the cluster")


def unpack(value: Any) -> Any:
    """The inverse of ``pack``."""
    if isinstance(value, list):
        return [unpack(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            if "$b" in value:
                data = value["$b"]
                if not isinstance(data, str):
                    raise ClusterMessageError("bad binary value")
                try:
                    return base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    raise ClusterMessageError("bad base64") from None
            if "$d" in value:
                inner = value["$d"]
                if not isinstance(inner, dict):
                    raise ClusterMessageError("bad escaped dict")
                return {key: unpack(item) for key, item in inner.items()}
        return {key: unpack(item) for key, item in value.items()}
    return value


def encode_packet(p: sio.Packet) -> list[str]:
    """A Socket.IO packet as ``[text, base64(attachment), ...]``."""
    parts = sio.encode(p)
    head = parts[0]
    assert isinstance(head, str)
    return [head, *(base64.b64encode(part).decode("ascii") for part in parts[1:]
                    if isinstance(part, bytes))]


def packet_frames(parts: Any) -> list[str | bytes]:
    """Engine.IO MESSAGE frames for a packet received as ``[text, base64, ...]``."""
    if not isinstance(parts, list) or not parts or not all(isinstance(x, str) for x in parts):
        raise ClusterMessageError("bad packet")
    try:
        attachments = [base64.b64decode(x, validate=True) for x in parts[1:]]
    except (binascii.Error, ValueError):
        raise ClusterMessageError("bad base64 attachment") from None
    return ["4" + parts[0], *attachments]


def decode_packet(parts: Any) -> sio.Packet:
    """The Packet of ``[text, base64, ...]`` (for operations that must re-encode it)."""
    frames = packet_frames(parts)
    decoder = sio.Decoder(max_attachments=len(frames) - 1, max_depth=256)
    try:
        packet = decoder.feed(frames[0][1:])
        for attachment in frames[1:]:
            packet = decoder.feed(attachment)
    except sio.PacketError as err:
        raise ClusterMessageError(f"bad packet: {err}") from None
    if packet is None or packet.type not in (sio.EVENT, sio.BINARY_EVENT):
        raise ClusterMessageError("bad packet")
    return packet


def _options(d: Any) -> BroadcastOptions:
    if not isinstance(d, dict):
        raise ClusterMessageError("bad options")
    rooms, except_ = d.get("rooms", []), d.get("except", [])
    if not isinstance(rooms, list) or not isinstance(except_, list) or not all(
            isinstance(r, str) for r in (*rooms, *except_)):
        raise ClusterMessageError("bad rooms")
    timeout = d.get("timeout")
    if timeout is not None and not isinstance(timeout, (int, float)):
        raise ClusterMessageError("bad timeout")
    return BroadcastOptions.from_dict(d)  # local=True: a received operation stays here


def _rooms(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ClusterMessageError("bad rooms")
    return value


def _request_id(msg: dict[str, Any]) -> str:
    rid = msg.get("rid")
    if not isinstance(rid, str):
        raise ClusterMessageError("bad request id")
    return rid


# ----------------------------------------------------------------------- remote sockets


class RemoteSocket:
    """A socket of another node, as ``fetch_sockets()`` returns it: ``id``, ``rooms``,
    ``data``, ``handshake``, and operations routed back through the adapter by id."""

    __slots__ = ("adapter", "id", "rooms", "data", "handshake")

    def __init__(self, adapter: Adapter, details: dict[str, Any]) -> None:
        self.adapter = adapter
        self.id: str = details["id"]
        self.rooms: set[str] = set(details.get("rooms", ()))
        self.data: Any = details.get("data")
        self.handshake: dict[str, Any] = details.get("handshake") or {}

    def __repr__(self) -> str:
        return f"<socketio.RemoteSocket {self.id} {self.adapter.nsp.name}>"

    @property
    def _self(self) -> BroadcastOptions:
        return BroadcastOptions(rooms={self.id})

    def emit(self, event: str, *args: Any) -> bool:
        return BroadcastOperator(self.adapter, self._self).emit(event, *args)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """``remote.timeout(5).emit(ev, callback=fn)`` / ``.emit_with_ack(ev)``."""
        return BroadcastOperator(self.adapter, self._self).timeout(seconds)

    def join(self, rooms: str | Iterable[str]) -> None:
        names = [rooms] if isinstance(rooms, str) else list(rooms)
        self.adapter.add_sockets(self._self, names)

    def leave(self, room: str) -> None:
        self.adapter.del_sockets(self._self, [room])

    def disconnect(self, close: bool = False) -> None:
        self.adapter.disconnect_sockets(self._self, close)


def describe_socket(socket: Any) -> dict[str, Any]:
    """What ``fetch_sockets`` tells other nodes about a local socket (packed)."""
    details: dict[str, Any] = {"id": socket.id, "rooms": sorted(socket.rooms)}
    for name in ("data", "handshake"):
        try:
            details[name] = pack(getattr(socket, name))
        except TypeError as err:
            log.warning("socket.io %s: socket.%s cannot cross the cluster (%s); sent as null",
                        socket.id, name, err)
            details[name] = None
    return details


# ----------------------------------------------------------------------- requests


class _FetchRequest:
    __slots__ = ("expected", "sockets", "answers", "done")

    def __init__(self, expected: int, done: Any) -> None:
        self.expected = expected
        self.sockets: list[dict[str, Any]] = []
        self.answers = 0
        self.done = done


class _AckRequest:
    """A broadcast with acks: reports ONE total client count to the caller once every
    node (this one included) has told how many clients it addressed."""

    __slots__ = ("pending", "total", "client_count", "ack", "reported")

    def __init__(self, nodes: int, client_count: Callable[[int], None],
                 ack: Callable[[list[Any]], None]) -> None:
        self.pending = nodes
        self.total = 0
        self.client_count = client_count
        self.ack = ack
        self.reported = False

    def count(self, n: int) -> None:
        self.total += n
        self.pending -= 1
        if self.pending <= 0:
            self.report()

    def report(self) -> None:
        if not self.reported:
            self.reported = True
            self.client_count(self.total)


# ----------------------------------------------------------------------- the adapter


class ClusterAdapter(Adapter):
    """In-memory rooms for this node's sockets plus forwarding to the other nodes.

    Subclasses provide the transport: ``send(kind, body, to)`` where ``kind`` is
    ``"all"`` (every node of the namespace), ``"request"`` (a request every node
    answers) or ``"response"`` (only node ``to``), and ``remote_node_count()``.
    """

    #: This node's id; messages carrying it are ours and are ignored when they come back.
    uid: str = ""
    #: Seconds a ``fetch_sockets`` waits for the other nodes.
    request_timeout: float = 5.0
    #: A write-only adapter (an emitter process) publishes but never listens.
    write_only: bool = False

    def __init__(self, nsp: Namespace) -> None:
        super().__init__(nsp)
        self._requests: dict[str, Any] = {}

    # -- transport (subclass) ------------------------------------------------------------

    def send(self, kind: str, body: bytes, to: str | None = None) -> bool:
        raise NotImplementedError

    def remote_node_count(self) -> int:
        """How many OTHER nodes serve this namespace (0 when unknown)."""
        raise NotImplementedError

    def server_count(self) -> int:
        """The nodes serving this namespace (a write-only emitter is not one)."""
        return (0 if self.write_only else 1) + max(self.remote_node_count(), 0)

    # -- encoding ------------------------------------------------------------------------

    def _publish(self, kind: str, type: str, to: str | None = None, **fields: Any) -> bool:
        message = {"v": WIRE_VERSION, "uid": self.uid, "type": type, **fields}
        text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: escape everything
            body = json.dumps(message, allow_nan=False, separators=(",", ":")).encode("ascii")
        return self.send(kind, body, to)

    def _publish_safely(self, kind: str, type: str, to: str | None = None,
                        **fields: Any) -> bool:
        try:
            return self._publish(kind, type, to, **fields)
        except (TypeError, ValueError) as err:
            log.warning("socket.io %s: %s not sent to the other nodes: %s",
                        self.nsp.name, type, err)
            return False

    def _new_request_id(self) -> str:
        return secrets.token_hex(8)

    # -- operations ----------------------------------------------------------------------

    def broadcast(self, p: sio.Packet, opts: BroadcastOptions) -> None:
        parts = sio.encode(p)
        frames: list[str | bytes] = ["4" + str(parts[0]), *parts[1:]]
        for socket in self._targets(opts):
            socket.client.write_frames(frames, opts.volatile)
        if not opts.local:
            wire = [str(parts[0]), *(base64.b64encode(x).decode("ascii")
                                     for x in parts[1:] if isinstance(x, bytes))]
            self._publish("all", "broadcast", packet=wire, opts=opts.to_dict())

    def add_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        super().add_sockets(opts, rooms)
        if not opts.local:
            self._publish("all", "sockets_join", opts=opts.to_dict(), rooms=list(rooms))

    def del_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        super().del_sockets(opts, rooms)
        if not opts.local:
            self._publish("all", "sockets_leave", opts=opts.to_dict(), rooms=list(rooms))

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(opts, close)
        if not opts.local:
            self._publish("all", "disconnect_sockets", opts=opts.to_dict(), close=bool(close))

    def server_side_emit(self, event: str, args: list[Any]) -> None:
        if not isinstance(event, str) or event in RESERVED_SERVER_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        self._publish("all", "server_side_emit", event=event, args=pack(list(args)))

    def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        found = super().fetch_sockets(opts)
        if opts.local:
            return found
        if self.write_only:
            raise RuntimeError("a write-only IOEngine cannot fetch sockets (it does not listen)")
        expected = self.remote_node_count()
        if expected <= 0:
            return found
        rid = self._new_request_id()
        request = _FetchRequest(expected, self.nsp.server.aio.event())
        self._requests[rid] = request
        try:
            if not self._publish("request", "fetch_sockets", rid=rid, opts=opts.to_dict()):
                log.warning("socket.io %s: fetch_sockets answered with this node's sockets "
                            "only (the other nodes are unreachable)", self.nsp.name)
                return found
            if not request.done.wait(self.request_timeout):
                raise RequestTimeoutError(
                    f"fetch_sockets: {request.answers} of {expected} other node(s) answered "
                    f"within {self.request_timeout}s")
        finally:
            self._requests.pop(rid, None)
        return found + [RemoteSocket(self, d) for d in request.sockets]

    def broadcast_with_ack(self, p: sio.Packet, opts: BroadcastOptions,
                           client_count: Callable[[int], None],
                           ack: Callable[[list[Any]], None]) -> None:
        if opts.local:
            super().broadcast_with_ack(p, opts, client_count, ack)
            return
        if self.write_only:
            raise RuntimeError("a write-only IOEngine cannot collect acknowledgements")
        remote = self.remote_node_count()
        if remote <= 0:
            super().broadcast_with_ack(p, opts, client_count, ack)
            return
        rid = self._new_request_id()
        request = _AckRequest(remote + 1, client_count, ack)
        self._requests[rid] = request
        aio = self.nsp.server.aio
        if opts.timeout is not None:
            # the caller stops listening after its timeout: forget the request then
            aio.call_later(opts.timeout + 1.0, self._requests.pop, rid, None)
        else:
            # no timeout: report the count known after request_timeout (a node may be
            # gone), then keep collecting acks for a while
            aio.call_later(self.request_timeout, aio.spawn, request.report)
            aio.call_later(max(60.0, 12 * self.request_timeout), self._requests.pop, rid, None)
        super().broadcast_with_ack(p, opts, request.count, ack)
        if not self._publish("request", "broadcast_with_ack", rid=rid,
                             packet=encode_packet(p), opts=opts.to_dict()):
            request.report()  # nobody else will answer: this node's count is the total

    # -- receiving -----------------------------------------------------------------------

    def on_cluster_message(self, body: bytes | str) -> None:
        """Handle one message from the transport (never raises)."""
        try:
            msg = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            log.warning("socket.io %s: ignored a cluster message that is not JSON",
                        self.nsp.name)
            return
        if not isinstance(msg, dict) or msg.get("uid") == self.uid:
            return
        type = msg.get("type")
        handler = _HANDLERS.get(type) if isinstance(type, str) else None
        if handler is None:
            log.warning("socket.io %s: ignored a cluster message of unknown type %r",
                        self.nsp.name, str(type)[:40])
            return
        try:
            handler(self, msg)
        except ClusterMessageError as err:
            log.warning("socket.io %s: ignored a bad %s message: %s", self.nsp.name, type, err)
        except Exception:
            log.exception("socket.io %s: handling a %s message from the cluster failed",
                          self.nsp.name, type)

    def _on_broadcast(self, msg: dict[str, Any]) -> None:
        frames = packet_frames(msg.get("packet"))
        opts = _options(msg.get("opts"))
        for socket in self._targets(opts):
            socket.client.write_frames(frames, opts.volatile)

    def _on_sockets_join(self, msg: dict[str, Any]) -> None:
        Adapter.add_sockets(self, _options(msg.get("opts")), _rooms(msg.get("rooms")))

    def _on_sockets_leave(self, msg: dict[str, Any]) -> None:
        Adapter.del_sockets(self, _options(msg.get("opts")), _rooms(msg.get("rooms")))

    def _on_disconnect_sockets(self, msg: dict[str, Any]) -> None:
        Adapter.disconnect_sockets(self, _options(msg.get("opts")), bool(msg.get("close")))

    def _on_server_side_emit(self, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        args = unpack(msg.get("args"))
        if not isinstance(event, str) or not isinstance(args, list):
            raise ClusterMessageError("bad server-side event")
        if event in RESERVED_SERVER_EVENTS:
            raise ClusterMessageError(f"reserved event {event!r}")
        handlers = list(self.nsp.handlers.get(event, ()))
        if handlers:
            # Application code may block: never in the listener itself.
            self.nsp.server.aio.spawn(_run_server_handlers, self.nsp.server, self.nsp.name,
                                      event, handlers, args)

    def _on_fetch_sockets(self, msg: dict[str, Any]) -> None:
        rid = _request_id(msg)
        sockets = [describe_socket(s) for s in Adapter.fetch_sockets(
            self, _options(msg.get("opts")))]
        self._publish_safely("response", "fetch_sockets_response", to=str(msg.get("uid")),
                             rid=rid, sockets=sockets)

    def _on_fetch_sockets_response(self, msg: dict[str, Any]) -> None:
        request = self._requests.get(_request_id(msg))
        if not isinstance(request, _FetchRequest):
            return  # answered too late, or not ours
        sockets = msg.get("sockets")
        if not isinstance(sockets, list):
            raise ClusterMessageError("bad sockets")
        for d in sockets:
            if not isinstance(d, dict) or not isinstance(d.get("id"), str):
                raise ClusterMessageError("bad socket")
            request.sockets.append({"id": d["id"], "rooms": _rooms(d.get("rooms", [])),
                                    "data": unpack(d.get("data")),
                                    "handshake": unpack(d.get("handshake"))})
        request.answers += 1
        if request.answers >= request.expected:
            request.done.set()

    def _on_broadcast_with_ack(self, msg: dict[str, Any]) -> None:
        rid = _request_id(msg)
        requester = str(msg.get("uid"))
        p = decode_packet(msg.get("packet"))
        opts = _options(msg.get("opts"))

        def count(n: int) -> None:
            self._publish_safely("response", "broadcast_client_count", to=requester,
                                 rid=rid, count=n)

        def ack(args: list[Any]) -> None:
            self._publish_safely("response", "broadcast_ack", to=requester, rid=rid,
                                 args=pack(list(args)))

        Adapter.broadcast_with_ack(self, p, opts, count, ack)

    def _on_broadcast_client_count(self, msg: dict[str, Any]) -> None:
        request = self._requests.get(_request_id(msg))
        count = msg.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ClusterMessageError("bad count")
        if isinstance(request, _AckRequest):
            request.count(count)

    def _on_broadcast_ack(self, msg: dict[str, Any]) -> None:
        request = self._requests.get(_request_id(msg))
        args = unpack(msg.get("args"))
        if not isinstance(args, list):
            raise ClusterMessageError("bad ack")
        if isinstance(request, _AckRequest):
            request.ack(args)


_HANDLERS: dict[str, Callable[[ClusterAdapter, dict[str, Any]], None]] = {
    "broadcast": ClusterAdapter._on_broadcast,
    "sockets_join": ClusterAdapter._on_sockets_join,
    "sockets_leave": ClusterAdapter._on_sockets_leave,
    "disconnect_sockets": ClusterAdapter._on_disconnect_sockets,
    "server_side_emit": ClusterAdapter._on_server_side_emit,
    "fetch_sockets": ClusterAdapter._on_fetch_sockets,
    "fetch_sockets_response": ClusterAdapter._on_fetch_sockets_response,
    "broadcast_with_ack": ClusterAdapter._on_broadcast_with_ack,
    "broadcast_client_count": ClusterAdapter._on_broadcast_client_count,
    "broadcast_ack": ClusterAdapter._on_broadcast_ack,
}


def _run_server_handlers(server: Any, nsp: str, event: str,
                         handlers: list[Callable[..., Any]], args: list[Any]) -> None:
    """Run ``on(event)`` handlers for a server-side emit, inside the Flask app context
    when the server has an app (the extension), without importing Flask here."""
    app = getattr(server, "app", None)
    for fn in handlers:
        try:
            if app is not None and hasattr(app, "app_context"):
                with app.app_context():
                    fn(*args)
            else:
                fn(*args)
        except Exception:
            log.exception("socket.io %s: server-side %r handler failed", nsp, event)


# ----------------------------------------------------------------------- installing


def use_adapter(server: Server, adapter_class: type[Adapter]) -> None:
    """Make ``adapter_class`` the adapter of ``server``'s namespaces, existing ones
    included (``IOEngine.init_app`` may configure the message queue after ``/`` exists).
    Rooms already known are kept; the old adapters are closed."""
    server.adapter_class = adapter_class
    for nsp in list(server.nsps.values()):
        old = nsp.adapter
        new = adapter_class(nsp)
        new.rooms, new.sids = old.rooms, old.sids
        nsp.adapter = new
        old.close()
        new.init()
    for parent in server.parent_nsps:
        parent.adapter_class = adapter_class
