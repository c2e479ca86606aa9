"""One node of a Socket.IO cluster for tests/test_redis_adapter.py.

``python cluster_app.py PORT`` (eventlet) or, with ``CLUSTER_RUN=flask``,
``flask --app cluster_app run --port PORT`` (threads: the Redis listener is then an OS
thread); ``NODE`` is the node's name and ``IOENGINE_MESSAGE_QUEUE`` the queue's URL,
read through ``app.config`` like any IOENGINE_ option.

Clients connect with ``auth={"rooms": [...], "user": ...}``: the socket joins those
rooms and ``socket.data`` is ``{"user": ..., "node": NODE}``. The test drives the
cluster API through ``POST /op`` (JSON in, JSON out); bytes travel as ``{"hex": ...}``.
Logging goes to stdout at INFO, so the tests can see the Redis adapter's messages.
"""

import os

if os.environ.get("CLUSTER_RUN") != "flask":
    import eventlet

    eventlet.monkey_patch()

import logging
import sys

from flask import Flask, jsonify, request

from flask_ioengine import IOEngine

logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(levelname)s %(name)s: %(message)s")

NODE = os.environ.get("NODE", "?")
app = Flask(__name__)
app.config["SECRET_KEY"] = "test"
app.config["IOENGINE_MESSAGE_QUEUE"] = os.environ["IOENGINE_MESSAGE_QUEUE"]
io = IOEngine(app, ping_interval=25, ping_timeout=20)
server_side: list[list] = []


def to_json(value):
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(value):
    if isinstance(value, dict):
        if set(value) == {"hex"}:
            return bytes.fromhex(value["hex"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def describe(socket):
    return {"id": socket.id, "rooms": sorted(socket.rooms), "data": to_json(socket.data),
            "auth": to_json(socket.handshake.get("auth")),
            "remote": type(socket).__name__ == "RemoteSocket"}


def connection(socket):
    auth = socket.handshake["auth"] or {}
    socket.data = {"user": auth.get("user"), "node": NODE}
    for room in auth.get("rooms", []):
        socket.join(room)

    @socket.on("whoami")
    def whoami():
        return {"id": socket.id, "node": NODE, "rooms": sorted(socket.rooms)}

    @socket.on("listener")
    def listener():
        """The concurrency backend this node's Redis listener was spawned with."""
        return {"aio": io.aio.name}


io.on("connection", connection)
io.of("/admin").on("connection", connection)


@io.on("cluster hello")
def cluster_hello(*args):
    """A server-side emit from another node: tell this node's clients."""
    server_side.append(list(args))
    io.local.emit("cluster hello received", NODE, *args)


@app.post("/op")
def op():
    spec = request.get_json()
    nsp = io.of(spec.get("nsp", "/"))
    target = nsp._op()
    if spec.get("rooms"):
        target = target.to(spec["rooms"])
    if spec.get("except"):
        target = target.except_(spec["except"])
    if spec.get("local"):
        target = target.local
    if spec.get("volatile"):
        target = target.volatile
    name = spec["op"]
    args = from_json(spec.get("args", []))
    if name == "emit":
        target.emit(spec["event"], *args)
        return jsonify(ok=True)
    if name == "emit_with_ack":
        try:
            responses = target.timeout(spec.get("timeout", 5)).emit_with_ack(spec["event"], *args)
        except TimeoutError as err:
            return jsonify(error=str(err))
        return jsonify(responses=to_json(responses))
    if name == "fetch_sockets":
        return jsonify(sockets=[describe(s) for s in target.fetch_sockets()])
    if name == "sockets_join":
        target.sockets_join(spec["target"])
        return jsonify(ok=True)
    if name == "sockets_leave":
        target.sockets_leave(spec["target"])
        return jsonify(ok=True)
    if name == "disconnect_sockets":
        target.disconnect_sockets(bool(spec.get("close")))
        return jsonify(ok=True)
    if name == "server_side_emit":
        nsp.server_side_emit(spec["event"], *args)
        return jsonify(ok=True)
    if name == "server_side_received":
        return jsonify(received=to_json(server_side))
    if name == "server_count":
        return jsonify(count=nsp.adapter.server_count())
    if name == "remote":
        # a socket of another node, found with fetch_sockets, driven by id
        (remote,) = [s for s in target.fetch_sockets() if s.id == spec["id"]]
        action = spec["action"]
        if action == "emit":
            remote.emit(spec["event"], *args)
        elif action == "join":
            remote.join(spec["target"])
        elif action == "leave":
            remote.leave(spec["target"])
        elif action == "disconnect":
            remote.disconnect(bool(spec.get("close")))
        return jsonify(ok=True, remote=type(remote).__name__)
    return jsonify(error=f"unknown op {name}"), 400


@app.get("/")
def index():
    return NODE


if __name__ == "__main__":
    io.run(app, port=int(sys.argv[1]))
