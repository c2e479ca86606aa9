"""Broadcast operators: ``io.to(room)``, ``in_``, ``except_``, ``volatile``, ``local``,
``timeout`` and what they do (emit, fetch_sockets, sockets_join/leave, disconnect_sockets).

Operators are immutable: each call returns a new one, so ``io.to("a")`` can be kept and
reused safely. The packet is encoded once per broadcast, whatever the audience size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import packet as sio
from .adapter import BroadcastOptions

if TYPE_CHECKING:
    from .adapter import Adapter


def _names(rooms: str | Iterable[str]) -> set[str]:
    return {rooms} if isinstance(rooms, str) else set(rooms)


class BroadcastOperator:
    """A selection of sockets of one namespace, possibly across nodes."""

    __slots__ = ("adapter", "opts")

    def __init__(self, adapter: Adapter, opts: BroadcastOptions | None = None) -> None:
        self.adapter = adapter
        self.opts = opts or BroadcastOptions()

    def _with(self, **changes: Any) -> BroadcastOperator:
        o = self.opts
        fields: dict[str, Any] = {"rooms": o.rooms, "except_": o.except_, "volatile": o.volatile,
                  "local": o.local, "timeout": o.timeout}
        fields.update(changes)
        return BroadcastOperator(self.adapter, BroadcastOptions(**fields))

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._with(rooms=self.opts.rooms | _names(rooms))

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._with(except_=self.opts.except_ | _names(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Packets that may be dropped when a client is not ready to receive them."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Only the sockets of this node (with a cluster adapter)."""
        return self._with(local=True)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Wait up to ``seconds`` for every client's acknowledgement."""
        return self._with(timeout=seconds)

    # -- operations ----------------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> bool:
        """Emit to the selection. With ``callback`` (needs ``timeout()``), it is called
        once as ``callback(err, responses)`` when all answered or time ran out."""
        p = sio.Packet(sio.EVENT, self.adapter.nsp.name, [event, *args])
        if callback is None:
            self.adapter.broadcast(p, self.opts)
            return True
        _AckCollector(self, p, callback).start()
        return True

    def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Emit and wait for every client's ack; returns the responses, raises
        ``AckTimeoutError`` when the ``timeout()`` runs out first."""
        from .socket import AckTimeoutError

        aio = self.adapter.nsp.server.aio
        done = aio.event()
        outcome: list[Any] = []

        def finished(err: Any, responses: list[Any]) -> None:
            outcome.extend([err, responses])
            done.set()

        self.emit(event, *args, callback=finished)
        limit = self.opts.timeout
        if not done.wait(None if limit is None else limit + 5):
            raise AckTimeoutError()
        if outcome[0] is not None:
            raise outcome[0]
        return list(outcome[1])

    def fetch_sockets(self) -> list[Any]:
        """The matching sockets (``RemoteSocket`` for other nodes)."""
        return self.adapter.fetch_sockets(self.opts)

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        self.adapter.add_sockets(self.opts, sorted(_names(rooms)))

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        self.adapter.del_sockets(self.opts, sorted(_names(rooms)))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the matching sockets ("server namespace disconnect"); ``close`` also
        closes their connections."""
        self.adapter.disconnect_sockets(self.opts, close)


class _AckCollector:
    """Collects one acknowledgement per addressed client, then calls back once."""

    def __init__(self, op: BroadcastOperator, p: sio.Packet, callback: Callable[..., Any]) -> None:
        self.op, self.p, self.callback = op, p, callback
        self.expected: int | None = None
        self.responses: list[Any] = []
        self.done = False
        self.timer: Any = None

    def start(self) -> None:
        aio = self.op.adapter.nsp.server.aio
        if self.op.opts.timeout is not None:
            self.timer = aio.call_later(self.op.opts.timeout, self._expired)
        self.op.adapter.broadcast_with_ack(self.p, self.op.opts, self._count, self._ack)

    def _count(self, n: int) -> None:
        self.expected = (self.expected or 0) + n
        self._check()

    def _ack(self, args: list[Any]) -> None:
        from .socket import unpack_ack

        if not self.done:
            self.responses.append(unpack_ack(args))
            self._check()

    def _check(self) -> None:
        if self.expected is not None and len(self.responses) >= self.expected:
            self._finish(None)

    def _expired(self) -> None:
        from .socket import AckTimeoutError

        aio = self.op.adapter.nsp.server.aio
        aio.spawn(self._finish, AckTimeoutError())

    def _finish(self, err: Any) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        self.callback(err, list(self.responses))
