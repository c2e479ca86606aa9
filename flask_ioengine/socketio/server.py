"""The Socket.IO v5 server: namespaces over one Engine.IO server, Node's API in Python.

``Server`` is also the main namespace ``/``: ``io.on("connection")``, ``io.use``,
``io.to(room).emit(...)`` act on it; ``io.of(name)`` reaches the others.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..engineio.server import Server as EngineServer
from .adapter import Adapter
from .broadcast import BroadcastOperator
from .client import Client
from .namespace import Namespace, ParentNamespace

log = logging.getLogger("flask_ioengine.socketio")

CLIENT_FILES = (
    "socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.min.js.map",
    "socket.io.esm.min.js", "socket.io.esm.min.js.map", "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
)


def find_client_dist(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``dist`` folder of an npm-installed ``socket.io-client``, searched from
    ``start`` (default: the working directory) up to the filesystem root."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        dist = folder / "node_modules" / "socket.io-client" / "dist"
        if (dist / "socket.io.min.js").is_file():
            return dist
    return None


class Server:
    """A Socket.IO server. Engine.IO options (``ping_interval``, ``cookie``, ``cors``,
    ``allow_request``, ...) are passed through to ``self.engine``."""

    OPTIONS: tuple[str, ...] = (
        "serve_client", "connect_timeout", "adapter", "max_attachments", "max_queued_events")

    def __init__(self, **options: Any) -> None:
        self.engine = EngineServer()
        self.engine.on("connection", self._on_connection)
        self.serve_client: bool | str | os.PathLike[str] = False
        self.connect_timeout = 45.0
        self.adapter_class: type[Adapter] = Adapter
        self.max_attachments = 10
        self.max_queued_events = 1000
        self._client_dist: Path | None = None
        self.nsps: dict[str, Namespace] = {}
        self.parent_nsps: list[ParentNamespace] = []
        self.configure(**options)
        self.sockets = self.of("/")

    @property
    def path(self) -> str:
        return self.engine.path

    def configure(self, **options: Any) -> None:
        """Set Socket.IO options (``serve_client``, ``connect_timeout``, ``adapter``,
        ``max_attachments``) and pass the rest to the Engine.IO server."""
        if "serve_client" in options:
            self.serve_client = options.pop("serve_client")
            self._client_dist = None
        if "connect_timeout" in options:
            self.connect_timeout = float(options.pop("connect_timeout"))
        if "adapter" in options:
            self.adapter_class = options.pop("adapter")
        if "max_attachments" in options:
            self.max_attachments = int(options.pop("max_attachments"))
        if "max_queued_events" in options:
            self.max_queued_events = int(options.pop("max_queued_events"))
        if options:
            self.engine.configure(**options)

    @property
    def aio(self) -> Any:
        return self.engine.aio

    # -- namespaces ----------------------------------------------------------------------

    def of(self, name: Any) -> Any:
        """The namespace called ``name``; a compiled regex or a callable
        ``fn(name, auth) -> bool`` defines dynamic namespaces instead."""
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            nsp = self.nsps.get(name)
            if nsp is None:
                nsp = self.nsps[name] = Namespace(self, name, self.adapter_class)
            return nsp
        parent = ParentNamespace(self, name, self.adapter_class)
        self.parent_nsps.append(parent)
        return parent

    def namespace_for(self, name: str, auth: Any) -> Namespace | None:
        """The namespace a CONNECT addresses, creating a dynamic one if a rule admits it."""
        nsp = self.nsps.get(name)
        if nsp is not None:
            return nsp
        for parent in self.parent_nsps:
            if parent.matches(name, auth):
                nsp = parent.create_child(name)
                self.nsps[name] = nsp
                return nsp
        return None

    def call_handler(self, socket: Any, fn: Callable[..., Any], *args: Any) -> Any:
        """Run application code for ``socket``; the Flask extension adds its contexts."""
        return fn(*args)

    def _on_connection(self, conn: Any) -> None:
        Client(self, conn)

    # -- the main namespace's API --------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        return self.sockets.on(event, handler)

    def use(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self.sockets.use(fn)

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.sockets.to(rooms)

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.sockets.except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.sockets.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.sockets.local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self.sockets.timeout(seconds)

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> bool:
        return self.sockets.emit(event, *args, callback=callback)

    def send(self, *args: Any) -> bool:
        return self.sockets.send(*args)

    def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        return self.sockets.emit_with_ack(event, *args)

    def fetch_sockets(self) -> list[Any]:
        return self.sockets.fetch_sockets()

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        self.sockets.sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        self.sockets.sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        self.sockets.disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> None:
        self.sockets.server_side_emit(event, *args)

    def server_count(self) -> int:
        """How many nodes share this server's adapter (Node's ``io.serverCount()``)."""
        return self.sockets.adapter.server_count()

    def close(self) -> None:
        """Disconnect every client and release the adapters."""
        for nsp in list(self.nsps.values()):
            for socket in list(nsp.sockets.values()):
                socket.disconnect(True)
            nsp.adapter.close()

    # -- WSGI ----------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Answer a request under ``path``: the client bundle or Engine.IO."""
        if self.serve_client and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            name = environ.get("PATH_INFO", "")[len(self.path):]
            if name in CLIENT_FILES:
                return self._client_file(name, environ, start_response)
        return self.engine.wsgi(environ, start_response)

    def _client_file(self, name: str, environ: dict[str, Any],
                     start_response: Callable[..., Any]) -> Any:
        if self._client_dist is None:
            if isinstance(self.serve_client, (str, os.PathLike)):
                self._client_dist = Path(self.serve_client)
            else:
                self._client_dist = find_client_dist()
        path = self._client_dist / name if self._client_dist else None
        if path is None or not path.is_file():
            log.warning("socket.io: serve_client found no npm socket.io-client (%s)", name)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"socket.io-client is not installed (npm install socket.io-client)"]
        stat = path.stat()
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", [("ETag", etag)])
            return [b""]
        ctype = "application/json" if name.endswith(".map") else (
            mimetypes.guess_type(name)[0] or "application/javascript")
        body = path.read_bytes() if environ.get("REQUEST_METHOD") == "GET" else b""
        start_response("200 OK", [
            ("Content-Type", f"{ctype}; charset=utf-8"), ("ETag", etag),
            ("Cache-Control", "public, max-age=0"), ("Content-Length", str(stat.st_size)),
        ])
        return [body]
