"""A Flask app exercising the Socket.IO API for the integration tests.

``python sio_app.py PORT`` serves it with ``io.run``.
"""

import eventlet

eventlet.monkey_patch()

import os
import re
import sys

import flask
from flask import Flask, g, request, session

from flask_ioengine import ConnectionRefusedError, IOEngine

app = Flask(__name__)
app.config["SECRET_KEY"] = "test"
ping = float(os.environ.get("PING_INTERVAL", "25"))
io = IOEngine(app, ping_interval=ping, ping_timeout=float(os.environ.get("PING_TIMEOUT", "20")),
              serve_client=True)
disconnects: list[tuple[str, str, str]] = []


@io.use
def refuse_bad_tokens(socket, next):
    auth = socket.handshake["auth"]
    if auth.get("token") == "bad":
        next(ConnectionRefusedError("not authorized", {"reason": "bad token"}))
    elif auth.get("token") == "raise":
        raise ValueError("refused by raising")
    else:
        next()


@io.on("connection")
def on_connection(socket):
    for room in socket.handshake["auth"].get("rooms", []):
        socket.join(room)

    @socket.use
    def no_forbidden(args, next):
        next(ValueError("forbidden event") if args[0] == "forbidden" else None)

    @socket.on("error")
    def on_error(err):
        socket.emit("middleware error", str(err))

    @socket.on("echo")
    def echo(*args):
        return args

    @socket.on("no args")
    def no_args():
        return "fine"

    @socket.on("join")
    def join(room):
        socket.join(room)
        return sorted(socket.rooms)

    @socket.on("leave")
    def leave(room):
        socket.leave(room)
        return sorted(socket.rooms)

    @socket.on("to room")
    def to_room(room, *args):
        io.to(room).emit("room message", *args)

    @socket.on("to room except")
    def to_room_except(room, excluded, *args):
        io.to(room).except_(excluded).emit("room message", *args)

    @socket.on("to others")
    def to_others(*args):
        socket.broadcast.emit("others message", *args)

    @socket.on("ask client")
    def ask_client(*args):
        return socket.emit_with_ack("question", *args, timeout=5)

    @socket.on("ask client timeout")
    def ask_client_timeout():
        try:
            socket.emit_with_ack("no answer", timeout=0.2)
        except TimeoutError as err:
            return f"timeout: {err}"
        return "answered?"

    @socket.on("ask room")
    def ask_room(room):
        return sorted(map(str, io.to(room).timeout(5).emit_with_ack("poll")))

    @socket.on("fetch")
    def fetch(room):
        return sorted(s.id for s in io.in_(room).fetch_sockets())

    @socket.on("room join all")
    def room_join_all(room, target):
        io.in_(room).sockets_join(target)
        return sorted(io.sockets.adapter.sockets([target]))

    @socket.on("disconnect room")
    def disconnect_room(room):
        io.in_(room).disconnect_sockets()

    @socket.on("disconnect me")
    def disconnect_me(close=False):
        socket.disconnect(close)

    @socket.on("close conn")
    def close_conn():
        socket.conn.close()

    @socket.on("context")
    def context():
        g.calls = getattr(g, "calls", 0) + 1
        session["seen"] = session.get("seen", 0) + 1
        return {"path": request.path, "query": request.args.get("q"), "app": flask.current_app.name,
                "g": g.calls, "id": socket.id}

    @socket.on("volatile")
    def volatile(n):
        for i in range(n):
            io.volatile.emit("v", i)
        return n

    @socket.on("binary")
    def binary(data):
        return {"got": data, "len": len(data["buf"]), "extra": [b"\x00\xff", {"nested": b"ok"}]}

    @socket.on("disconnect")
    def on_disconnect(reason):
        disconnects.append((socket.nsp.name, socket.id, reason))
        print(f"DISCONNECT {socket.nsp.name} {socket.id} {reason}", flush=True)

    @socket.on("last disconnect")
    def last_disconnect():
        return [list(d) for d in disconnects[-5:]]


admin = io.of("/admin")


@admin.on("connection")
def admin_connection(socket):
    @socket.on("whoami")
    def whoami():
        return {"nsp": socket.nsp.name, "auth": socket.handshake["auth"]}


dyn = io.of(re.compile(r"/dyn-\d+"))


@dyn.on("connection")
def dyn_connection(socket):
    socket.emit("welcome", socket.nsp.name)


@app.post("/emit/<room>")
def emit_from_view(room):
    io.to(room).emit("from view", request.get_json(silent=True))
    return "", 204


@app.get("/")
def index():
    return "sio test app"


@io.on("connection")
def on_connection_more(socket):
    """More handlers of the main namespace, used by tests/test_socketio_*client.py."""

    @socket.on("handshake")
    def handshake():
        return {"auth": socket.handshake["auth"], "query": socket.handshake["query"],
                "url": socket.handshake["url"], "address": socket.handshake["address"],
                "id": socket.id}

    @socket.on("session seen")
    def session_seen():
        return session.get("seen", 0)

    @socket.on("send binary")
    def send_binary(*args):
        socket.emit("binary event", {"bytes": b"\x01\x02\xfe", "list": [b"x", {"deep": b""}]},
                    *args)
        return "sent"


if __name__ == "__main__":
    io.run(app, port=int(sys.argv[1]))
