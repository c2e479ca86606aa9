"""HTTP long-polling: a GET waits for queued packets, a POST delivers a payload."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import packet
from .socket import CLOSED, CLOSING, OPEN, Socket

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("flask_ioengine.engineio")


#: Packets per long-poll response: python-engineio clients refuse payloads of more than
#: 16 packets, so a burst is spread over several polls instead.
MAX_PACKETS_PER_POLL = 16


class TransportError(Exception):
    """The request broke the polling rules; the session has been closed."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def poll(server: Server, socket: Socket) -> str:
    """Answer a GET: wait until something is queued (or the session ends), then drain."""
    if socket.polling:
        log.info("engine.io %s: overlapping polls, closing", socket.sid)
        socket.closed("transport error")
        raise TransportError(400, 3, "Bad request")
    if socket.upgraded:
        return packet.NOOP_PACKET
    socket.polling = True
    try:
        deadline_wait = server.ping_interval + server.ping_timeout
        while not socket.outbox and socket.state == OPEN and not socket.upgrading:
            socket.wake.clear()
            if socket.outbox or socket.state != OPEN or socket.upgrading:
                break
            if not socket.wake.wait(deadline_wait):
                break
        frames = socket.take(MAX_PACKETS_PER_POLL)
    finally:
        socket.polling = False
    if socket.state == CLOSING and socket.outbox:
        return packet.encode_payload(frames)  # the rest (and the CLOSE) on the next polls
    if socket.state != OPEN and len(frames) > 1 and frames[-1] == packet.CLOSE_PACKET:
        # Deliver what preceded the CLOSE first (the client acts on CLOSE at once and
        # would otherwise take a server kick for a network failure); CLOSE comes next poll.
        socket.outbox.append(frames.pop())
        return packet.encode_payload(frames)
    if socket.state != OPEN:
        if not frames or frames[-1] != packet.CLOSE_PACKET:
            frames.append(packet.CLOSE_PACKET)
        socket.closed(socket.close_reason or "forced close")
    if not frames:
        frames = [packet.NOOP_PACKET]
    return packet.encode_payload(frames)


def deliver(socket: Socket, body: bytes) -> None:
    """Answer a POST: decode the payload and hand each packet to the session."""
    try:
        packets = packet.decode_payload(body)
    except packet.PacketError as err:
        log.info("engine.io %s: bad payload (%s), closing", socket.sid, err)
        socket.closed("parse error")
        raise TransportError(400, 3, "Bad request") from None
    for type, data in packets:
        if socket.state == CLOSED:
            break
        socket.receive(type, data)
