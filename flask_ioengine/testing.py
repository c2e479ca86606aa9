"""An in-process Socket.IO test client, like Flask's ``app.test_client()``.

    flask_client = app.test_client()
    flask_client.post("/login", data={...})          # the session cookie is set here
    client = io.test_client(app, flask_test_client=flask_client, auth={"token": "t"})
    client.emit("my event", callback=True)            # -> the handler's return value
    client.get_received()                             # -> [{"name", "args", "namespace"}]

No network and no threads: the handshake runs the engine's middlewares (so the Flask
session of the Flask test client's cookies is shared), and every packet is handled in the
caller's thread before ``emit``/``connect`` return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.test import EnvironBuilder

from .engineio import packet as eio
from .engineio.server import IN_PROCESS_KEY
from .socketio import packet as sio

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from .extension import IOEngine


class TestClientError(RuntimeError):
    """The server refused the test client (its handshake or a namespace CONNECT)."""

    __test__ = False  # not a pytest test class


class SocketIOTestClient:
    """A Socket.IO client living in the test's thread, talking to ``io`` in-process."""

    __test__ = False  # not a pytest test class

    def __init__(self, io: IOEngine, app: Flask | None = None, namespace: str | None = None,
                 query_string: str | None = None, headers: dict[str, str] | None = None,
                 auth: dict[str, Any] | None = None,
                 flask_test_client: FlaskClient | None = None) -> None:
        self.io = io
        self.app = app or io.app
        query = "EIO=4&transport=polling" + ("&" + query_string.lstrip("?&") if query_string else "")
        environ = EnvironBuilder(path=io.path, query_string=query, headers=list((headers or {}).items()),
                                 base_url="http://localhost").get_environ()
        if flask_test_client is not None:
            flask_test_client._add_cookies_to_wsgi(environ)
        environ[IN_PROCESS_KEY] = True
        response = io.engine.handle(environ)
        conn = environ.get(IN_PROCESS_KEY)
        if response.status != 200 or conn is True or conn is None:
            raise TestClientError(f"handshake refused: {response.status} {response.body!r}")
        self.conn = conn
        conn.handler.inline = True
        conn.take()  # the OPEN packet
        self.decoder = sio.Decoder()
        self.connected: dict[str, bool] = {}
        self.errors: dict[str, Any] = {}
        self.received: list[dict[str, Any]] = []
        self.acks: dict[int, list[Any]] = {}
        self._ack_ids = 0
        self.connect(namespace or "/", auth)

    # -- the API -------------------------------------------------------------------------

    def connect(self, namespace: str = "/", auth: dict[str, Any] | None = None) -> None:
        """Connect to ``namespace``; raises TestClientError if the server refuses."""
        self._send(sio.Packet(sio.CONNECT, namespace, auth))
        if not self.connected.get(namespace):
            raise TestClientError(f"connection to {namespace} refused: "
                                  f"{self.errors.get(namespace)!r}")

    def disconnect(self, namespace: str = "/") -> None:
        if self.connected.get(namespace):
            self._send(sio.Packet(sio.DISCONNECT, namespace))
            self.connected[namespace] = False

    def is_connected(self, namespace: str = "/") -> bool:
        self._collect()
        return bool(self.connected.get(namespace))

    def emit(self, event: str, *args: Any, namespace: str = "/", callback: bool = False) -> Any:
        """Emit an event; with ``callback=True`` return the handler's acknowledgement (one
        value as is, several as a tuple)."""
        p = sio.Packet(sio.EVENT, namespace, [event, *args])
        if callback:
            self._ack_ids += 1
            p.id = self._ack_ids
        self._send(p)
        if not callback:
            return None
        args_ = self.acks.pop(self._ack_ids, None)
        if args_ is None:
            raise TestClientError(f"no acknowledgement for {event!r}")
        return args_[0] if len(args_) == 1 else tuple(args_) if args_ else None

    def send(self, *args: Any, namespace: str = "/", callback: bool = False) -> Any:
        return self.emit("message", *args, namespace=namespace, callback=callback)

    def get_received(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """The events received since the last call (all namespaces, or ``namespace``)."""
        self._collect()
        if namespace is None:
            out, self.received = self.received, []
            return out
        out = [r for r in self.received if r["namespace"] == namespace]
        self.received = [r for r in self.received if r["namespace"] != namespace]
        return out

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, p: sio.Packet) -> None:
        for part in sio.encode(p):
            self.conn.receive(eio.MESSAGE, part)
        self._collect()

    def _collect(self) -> None:
        for frame in self.conn.take():
            if isinstance(frame, bytes):
                self._on_packet(self.decoder.feed(frame))
            elif frame.startswith("4"):
                self._on_packet(self.decoder.feed(frame[1:]))
            elif frame == eio.PING_PACKET:
                self.conn.receive(eio.PONG, "")
            elif frame == eio.CLOSE_PACKET:
                self.connected.clear()

    def _on_packet(self, p: sio.Packet | None) -> None:
        if p is None:
            return
        if p.type == sio.CONNECT:
            self.connected[p.nsp] = True
        elif p.type == sio.CONNECT_ERROR:
            self.errors[p.nsp] = p.data
        elif p.type == sio.DISCONNECT:
            self.connected[p.nsp] = False
        elif p.type in (sio.EVENT, sio.BINARY_EVENT):
            self.received.append({"name": p.data[0], "args": p.data[1:], "namespace": p.nsp})
            if p.id is not None:  # the server wants an ack: answer with nothing
                self.conn.receive(eio.MESSAGE, sio.encode(sio.Packet(sio.ACK, p.nsp, [], p.id))[0])
        elif p.type in (sio.ACK, sio.BINARY_ACK) and p.id is not None:
            self.acks[p.id] = p.data
