"""Rooms and broadcasting for one namespace, in memory (one process).

The interface mirrors Node's ``socket.io-adapter``; the Redis adapter implements the
same methods and forwards what must reach other nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..engineio.wsframe import share
from . import packet as sio

if TYPE_CHECKING:
    from .namespace import Namespace
    from .socket import Socket


class BroadcastOptions:
    """Who a broadcast targets: ``rooms`` (empty = everyone) minus ``except_``."""

    __slots__ = ("rooms", "except_", "volatile", "local", "timeout")

    def __init__(self, rooms: Iterable[str] = (), except_: Iterable[str] = (),
                 volatile: bool = False, local: bool = False,
                 timeout: float | None = None) -> None:
        self.rooms = frozenset(rooms)
        self.except_ = frozenset(except_)
        self.volatile = volatile
        self.local = local
        self.timeout = timeout

    def to_dict(self) -> dict[str, Any]:
        return {"rooms": sorted(self.rooms), "except": sorted(self.except_),
                "volatile": self.volatile, "timeout": self.timeout}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BroadcastOptions:
        return cls(d.get("rooms", ()), d.get("except", ()), bool(d.get("volatile")),
                   True, d.get("timeout"))


def engine_frames(p: sio.Packet) -> list[str | bytes]:
    """Encode a Socket.IO packet once into Engine.IO MESSAGE frames."""
    parts = sio.encode(p)
    first = parts[0]
    assert isinstance(first, str)
    return ["4" + first, *parts[1:]]


class Adapter:
    """In-memory rooms: ``rooms`` maps room → socket ids, ``sids`` the reverse."""

    def __init__(self, nsp: Namespace) -> None:
        self.nsp = nsp
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}

    def init(self) -> None:
        """Called once when the namespace is created."""

    def close(self) -> None:
        """Called when the server shuts down."""

    def server_count(self) -> int:
        return 1

    # -- membership --------------------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        mine = self.sids.setdefault(sid, set())
        for room in rooms:
            mine.add(room)
            self.rooms.setdefault(room, set()).add(sid)

    def delete(self, sid: str, room: str) -> None:
        mine = self.sids.get(sid)
        if mine is not None:
            mine.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def del_all(self, sid: str) -> None:
        for room in self.sids.pop(sid, ()):
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]

    def socket_rooms(self, sid: str) -> set[str]:
        return set(self.sids.get(sid, ()))

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        return {s.id for s in self._targets(BroadcastOptions(rooms))}

    def _targets(self, opts: BroadcastOptions) -> list[Socket]:
        """The local sockets an operation addresses, each once."""
        connected = self.nsp.sockets
        excluded: set[str] = set()
        for room in opts.except_:
            excluded.update(self.rooms.get(room, ()))
        if opts.rooms:
            ids: set[str] = set()
            for room in opts.rooms:
                ids.update(self.rooms.get(room, ()))
            return [connected[i] for i in ids if i not in excluded and i in connected]
        return [s for i, s in list(connected.items()) if i not in excluded]

    # -- operations (a cluster adapter also forwards these) ----------------------------

    def broadcast(self, p: sio.Packet, opts: BroadcastOptions) -> None:
        frames = engine_frames(p)
        targets = self._targets(opts)
        if len(targets) > 1:
            share(frames)  # framed once for every WebSocket
        pace = self.nsp.server.aio.pace
        volatile = opts.volatile
        for i in range(0, len(targets), 64):
            for socket in targets[i:i + 64]:
                if volatile:
                    socket.client.write_frames(frames, True)
                else:
                    socket.client.conn.send_encoded(frames)
            pace(len(frames) * len(targets[i:i + 64]))  # big audiences: writes go out meanwhile

    def broadcast_with_ack(self, p: sio.Packet, opts: BroadcastOptions,
                           client_count: Callable[[int], None],
                           ack: Callable[[list[Any]], None]) -> None:
        """Emit expecting one ack per socket: ``client_count(n)`` is called first, then
        ``ack(args)`` once per socket that answers."""
        targets = self._targets(opts)
        client_count(len(targets))
        for socket in targets:
            socket.emit_packet_with_ack(p, ack)

    def add_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        for socket in self._targets(opts):
            socket.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        for socket in self._targets(opts):
            for room in rooms:
                socket.leave(room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for socket in self._targets(opts):
            socket.disconnect(close)

    def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        return list(self._targets(opts))

    def server_side_emit(self, event: str, args: list[Any]) -> None:
        """Deliver an event to the other nodes (nothing to do with a single node)."""
