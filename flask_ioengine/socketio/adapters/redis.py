"""The Redis adapter: Socket.IO across processes and hosts over Redis pub/sub.

    io = IOEngine(app, message_queue="redis://127.0.0.1:6379/0")
    # or: app.config["IOENGINE_MESSAGE_QUEUE"] = "redis://..."
    # or: IOEngine(app, adapter=create_redis_adapter(url, key="myapp"))

Channels, per namespace ``nsp`` (``key`` defaults to ``"flask_ioengine"``)::

    <key>#<nsp>#                   operations for every node (emit, join, leave, disconnect)
    <key>-request#<nsp>#           requests every node answers (fetch_sockets, acks)
    <key>-response#<nsp>#<uid>#    answers for the node ``uid`` only

The number of nodes (``server_count()``) is the number of subscribers of the request
channel (``PUBSUB NUMSUB``). Messages are JSON, see ``adapters/__init__.py``.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from . import ClusterAdapter

if TYPE_CHECKING:
    from ..namespace import Namespace

log = logging.getLogger("flask_ioengine.socketio.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KEY = "flask_ioengine"
#: Listener backoff: first retry after MIN_DELAY seconds, doubling up to MAX_DELAY.
MIN_DELAY = 0.1
MAX_DELAY = 5.0
#: After a failed publish, further publishes are dropped at once for this long (or
#: until a listener has subscribed again), so emitters never queue on a dead Redis.
DOWN_PAUSE = 1.0
#: The listener PINGs after this many silent seconds and gives up on the connection
#: when the PONG does not come within as many again: it never goes silently deaf.
HEALTH_INTERVAL = 10.0
POLL = 1.0
WARN_EVERY = 10.0

_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisBus:
    """What the namespaces of one node share: its ``uid``, the Redis clients (one
    connection pool to publish, one for the subscriptions) and the publishing state."""

    def __init__(self, url: str, key: str = DEFAULT_KEY, request_timeout: float = 5.0,
                 write_only: bool = False, **redis_options: Any) -> None:
        self.uid = secrets.token_hex(8)
        self.url = url
        self.key = key
        self.request_timeout = float(request_timeout)
        self.write_only = write_only
        options = {"socket_connect_timeout": 2.0, "socket_timeout": 5.0, **redis_options}
        # Publishing retries once at once (a pooled connection Redis closed meanwhile),
        # never with a backoff that would stall the emitting green thread.
        self.pub = redis.Redis.from_url(url, **{**options, "retry": Retry(NoBackoff(), 1)})
        self._sub_options = {**options, "socket_timeout": 2 * HEALTH_INTERVAL,
                             "retry": Retry(NoBackoff(), 0)}
        self._sub: redis.Redis | None = None
        kw = self.pub.connection_pool.connection_kwargs
        self.where = (f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}"
                      f"/{kw.get('db', 0)}")
        self._down_until = 0.0
        self.dropped = 0
        self._last_warning = 0.0

    @property
    def sub(self) -> redis.Redis:
        """The client the listeners subscribe with (no retries: the listener's own
        supervision reconnects, logs and resubscribes)."""
        if self._sub is None:
            self._sub = redis.Redis.from_url(self.url, **self._sub_options)
        return self._sub

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def publish(self, channel: str, body: bytes) -> bool:
        """Publish or drop (logged): never raises, never waits on an unreachable Redis
        longer than one connection attempt per DOWN_PAUSE."""
        if self.down:
            self._dropped(None)
            return False
        try:
            self.pub.publish(channel, body)
        except _CONNECTION_ERRORS as err:
            self._down_until = time.monotonic() + DOWN_PAUSE
            self._dropped(err)
            return False
        except RedisError as err:
            log.warning("Redis %s refused a publish (%s): the cross-node part of this "
                        "operation is dropped", self.where, err)
            return False
        if self.dropped:
            log.warning("Redis %s reachable again; %d cross-node message(s) were dropped "
                        "while it was not", self.where, self.dropped)
            self.dropped = 0
        return True

    def _dropped(self, err: Exception | None) -> None:
        self.dropped += 1
        now = time.monotonic()
        if self.dropped == 1 or now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning("Redis %s unreachable%s: cross-node messages are dropped until it is "
                        "back (%d so far); local delivery is not affected", self.where,
                        f" ({err})" if err is not None else "", self.dropped)

    def reachable(self) -> None:
        """A listener (re)subscribed: Redis is back, publish again at once."""
        self._down_until = 0.0


class RedisAdapter(ClusterAdapter):
    """Rooms of this node in memory; operations crossing nodes over Redis pub/sub.

    Use ``create_redis_adapter(url)`` (or the ``message_queue`` option), which binds
    the class to one ``RedisBus``.

    **While Redis is down**: everything local keeps working (this node's sockets get
    their emits, rooms, acks and disconnects; local work is done before anything is
    published). The cross-node part of each operation is dropped and logged (one
    warning, then one every 10 s with the count), and nothing is queued or replayed:
    a pub/sub message that no node could receive is lost, like with Node's adapter.
    ``fetch_sockets``/acks return/count this node's sockets only; ``server_count()``
    says 1. The listener green thread logs the lost subscription and resubscribes
    with backoff (0.1 s doubling to 5 s), so cross-node delivery resumes within
    about 5 s of Redis coming back; a subscription that stops answering PINGs is
    treated the same way, so a node never goes silently deaf to the cluster.
    """

    bus: RedisBus

    def __init__(self, nsp: Namespace) -> None:
        super().__init__(nsp)
        bus = self.bus
        self.uid = bus.uid
        self.request_timeout = bus.request_timeout
        self.write_only = bus.write_only
        self._prefix = f"{bus.key}-response#{nsp.name}#"
        self.channel = f"{bus.key}#{nsp.name}#"
        self.request_channel = f"{bus.key}-request#{nsp.name}#"
        self.response_channel = f"{self._prefix}{self.uid}#"
        self.subscribed = False
        #: How many times the listener has subscribed (1 + resubscriptions).
        self.subscriptions = 0
        self._closed = False
        self._delay = MIN_DELAY

    # -- lifecycle -----------------------------------------------------------------------

    def init(self) -> None:
        if not self.write_only:
            self.nsp.server.aio.spawn(self._listen)

    def close(self) -> None:
        self._closed = True

    # -- transport -----------------------------------------------------------------------

    def send(self, kind: str, body: bytes, to: str | None = None) -> bool:
        if kind == "all":
            channel = self.channel
        elif kind == "request":
            channel = self.request_channel
        else:
            channel = f"{self._prefix}{to}#"
        return self.bus.publish(channel, body)

    def remote_node_count(self) -> int:
        if self.bus.down:
            return 0
        try:
            (_, n), = self.bus.pub.pubsub_numsub(self.request_channel)
        except (RedisError, OSError, ValueError) as err:
            log.warning("Redis %s: cannot count the nodes (%s); assuming this one only",
                        self.bus.where, err)
            return 0
        return max(int(n) - (1 if self.subscribed else 0), 0)

    # -- the listener --------------------------------------------------------------------

    def _listen(self) -> None:
        """Supervised: any failure is logged, then it resubscribes with backoff."""
        aio = self.nsp.server.aio
        while not self._closed:
            pubsub = None
            try:
                pubsub = self.bus.sub.pubsub()
                pubsub.subscribe(self.channel, self.request_channel, self.response_channel)
                self._receive(pubsub)
            except Exception as err:
                self.subscribed = False
                if self._closed:
                    break
                delay = self._delay
                self._delay = min(delay * 2, MAX_DELAY)
                if isinstance(err, _CONNECTION_ERRORS):
                    log.warning("socket.io %s: Redis %s listener lost (%s: %s); "
                                "resubscribing in %.1fs", self.nsp.name, self.bus.where,
                                type(err).__name__, err, delay)
                else:
                    log.exception("socket.io %s: Redis listener failed; resubscribing in "
                                  "%.1fs", self.nsp.name, delay)
                _close(pubsub)
                pubsub = None
                aio.sleep(delay)
            finally:
                _close(pubsub)
        self.subscribed = False

    def _receive(self, pubsub: Any) -> None:
        channels = 3
        confirmed = 0
        last = time.monotonic()
        ping_sent: float | None = None
        while not self._closed:
            message = pubsub.get_message(timeout=POLL)
            now = time.monotonic()
            if message is None:
                if ping_sent is None:
                    if now - last >= HEALTH_INTERVAL:
                        pubsub.ping()
                        ping_sent = now
                elif now - ping_sent >= HEALTH_INTERVAL:
                    raise RedisConnectionError(f"no answer to PING in {HEALTH_INTERVAL}s")
                continue
            last = now
            ping_sent = None
            kind = message.get("type")
            if kind == "message":
                self.on_cluster_message(message["data"])
            elif kind == "subscribe":
                confirmed += 1
                if confirmed == channels:
                    self._on_subscribed()

    def _on_subscribed(self) -> None:
        self.subscribed = True
        self._delay = MIN_DELAY
        self.subscriptions += 1
        self.bus.reachable()
        if self.subscriptions == 1:
            log.info("socket.io %s: Redis %s listener subscribed (node %s)",
                     self.nsp.name, self.bus.where, self.uid)
        else:
            log.warning("socket.io %s: Redis %s listener resubscribed (messages published "
                        "while it was away were not received)", self.nsp.name, self.bus.where)


def _close(pubsub: Any) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # a dead connection may fail to close: nothing to do
            log.debug("closing a Redis pubsub failed", exc_info=True)


def create_redis_adapter(url: str = DEFAULT_URL, *, key: str = DEFAULT_KEY,
                         request_timeout: float = 5.0, write_only: bool = False,
                         **redis_options: Any) -> type[RedisAdapter]:
    """An adapter class bound to the Redis at ``url`` (``redis://``, ``rediss://``,
    ``unix://``). ``key`` prefixes the channel names (apps sharing a Redis must use
    different keys); ``request_timeout`` bounds ``fetch_sockets``; ``write_only``
    publishes without listening (an emitter process). Other keyword arguments go to
    ``redis.Redis.from_url``."""
    bus = RedisBus(url, key=key, request_timeout=request_timeout, write_only=write_only,
                   **redis_options)
    return cast("type[RedisAdapter]", type("RedisAdapter", (RedisAdapter,), {
        "bus": bus, "__module__": __name__, "__doc__": RedisAdapter.__doc__}))
