"""Emit to the clients of a cluster from a process that serves none (a worker, a cron
job, a script), through the Redis message queue. No Flask app, no server, no listener:

    from flask_ioengine.emitter import Emitter

    io = Emitter("redis://127.0.0.1:6379/0")
    io.to("room").emit("news", {"id": 1}, b"\\x00binary ok")
    io.of("/admin").emit("audit", "done")
    io.in_(session_id).disconnect_sockets()
    io.in_("room").sockets_join("other room")

``IOEngine(message_queue=url, write_only=True)`` is the same thing inside a Flask
project. Operations that wait for answers (``fetch_sockets``, acks) need a listening
node and raise RuntimeError here. Each call publishes synchronously: when it returns,
Redis has the message (or the failure was logged and the message dropped).
"""

from __future__ import annotations

from typing import Any

from .socketio.adapters.redis import DEFAULT_URL, create_redis_adapter
from .socketio.server import Server


class Emitter(Server):
    """A write-only Socket.IO server: the broadcast API, published to Redis."""

    def __init__(self, message_queue: str = DEFAULT_URL, **redis_options: Any) -> None:
        """``redis_options``: ``key``, ``request_timeout`` and ``redis.Redis.from_url``
        keyword arguments, as for ``create_redis_adapter``."""
        super().__init__(adapter=create_redis_adapter(message_queue, write_only=True,
                                                      **redis_options))
