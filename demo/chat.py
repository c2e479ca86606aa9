"""A chat room on Socket.IO: ``flask --app demo.chat run`` or ``python -m demo.chat``.

Rooms, broadcasts that skip the sender, acknowledgements, the Flask session (your name is
kept in it, so every tab of one browser is the same user) and ``fetch_sockets`` for the
list of who is here.
"""

from __future__ import annotations

if __name__ == "__main__":  # io.run() serves on eventlet: patch before anything else
    import eventlet

    eventlet.monkey_patch()

import os

from flask import Flask, render_template, request, session

from flask_ioengine import IOEngine

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "changeit")
io = IOEngine(app, serve_client=os.environ.get("CLIENT_DIST", True))


@app.get("/")
def index():
    return render_template("chat.html", name=session.get("name", ""))


@app.post("/name")
def set_name():
    session["name"] = (request.form.get("name") or "").strip()[:32] or "anonymous"
    return session["name"]


def who_is_here(room: str) -> list[str]:
    return sorted({s.data.get("name", "?") for s in io.in_(room).fetch_sockets()})


@io.on("connection")
def on_connection(socket):
    socket.data["name"] = session.get("name") or "anonymous"  # the handshake's session

    @socket.on("join")
    def join(room):
        room = str(room)[:32] or "lobby"
        for old in socket.rooms - {socket.id}:
            socket.leave(old)
            io.to(old).emit("left", socket.data["name"], who_is_here(old))
        socket.join(room)
        socket.to(room).emit("joined", socket.data["name"], who_is_here(room))
        return {"room": room, "here": who_is_here(room)}

    @socket.on("say")
    def say(text):
        text = str(text)[:500]
        rooms = socket.rooms - {socket.id}
        socket.to(rooms).emit("said", socket.data["name"], text)  # everyone else
        return {"delivered": True, "text": text}  # the sender gets the ack

    @socket.on("disconnecting")
    def disconnecting(reason):
        for room in socket.rooms - {socket.id}:
            socket.to(room).emit("left", socket.data["name"], [])


if __name__ == "__main__":
    io.run(app, port=int(os.environ.get("PORT", "5001")))
