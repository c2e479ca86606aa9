"""The README's quickstart: a Flask app whose session is shared with its sockets."""

if __name__ == "__main__":  # io.run() serves on eventlet: patch before anything else
    import eventlet

    eventlet.monkey_patch()

import os

from flask import Flask, session
from flask_session import Session

from flask_ioengine import IOEngine

app = Flask(__name__)
app.config.update(SECRET_KEY="changeit", SESSION_TYPE="cachelib")
Session(app)

io = IOEngine(app, cookie=True, cors={"origin": ["http://localhost:4200"], "credentials": True})
io.engine.use(app.session_interface)  # share the Flask session with sockets


@io.on("connection")
def on_connection(socket):
    socket.join(socket.request.session.sid)  # one room per browser session

    @socket.on("my event")
    def my_event():
        socket.request.session.reload()
        socket.request.session["count"] = socket.request.session.get("count", 0) + 1
        socket.request.session.save()
        return socket.request.session["count"]  # return value = acknowledgement


@app.post("/incr")
def incr():
    session["count"] = session.get("count", 0) + 1
    io.to(session.sid).emit("current count", session["count"])
    return str(session["count"])


@app.post("/logout")
def logout():
    io.logout()  # clears the session, disconnects its sockets on every node
    return "", 204


if __name__ == "__main__":
    io.run(app, port=int(os.environ.get("PORT", "5000")))
