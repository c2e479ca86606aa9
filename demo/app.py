"""The demo application of SPEC §3: a session counter kept live over Socket.IO.

Run it with ``make demo`` (``python -m demo``), ``flask --app demo.app run`` or
``gunicorn -k flask_ioengine.gunicorn.EventletWorker -w 1 demo.app:app``.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, render_template, request, session
from flask_session import Session

from flask_ioengine import IOEngine

HERE = Path(__file__).resolve().parent

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY", "changeit"),
    SESSION_TYPE=os.environ.get("SESSION_TYPE", "cachelib"),
)
if app.config["SESSION_TYPE"] == "cachelib":
    from cachelib import FileSystemCache

    app.config["SESSION_CACHELIB"] = FileSystemCache(
        os.environ.get("SESSION_DIR", str(HERE / ".sessions")), threshold=0)
elif app.config["SESSION_TYPE"] == "redis":
    import redis

    app.config["SESSION_REDIS"] = redis.from_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
Session(app)

CORS_ORIGIN = os.environ.get("CORS_ORIGIN", "http://localhost:4200")
io = IOEngine(
    app,
    cookie=True,
    cors={"origin": [CORS_ORIGIN], "credentials": True},
    serve_client=os.environ.get("CLIENT_DIST", True),
    session_reload_interval=float(os.environ.get("SESSION_RELOAD_INTERVAL", "30")),
    message_queue=os.environ.get("MESSAGE_QUEUE") or None,
)
io.engine.use(app.session_interface)  # share the Flask session with sockets


@io.engine.on("initial_headers")
def initial_headers(headers, req):
    headers.add("Set-Cookie", "uid=1234; SameSite=Strict")


@io.engine.on("headers")
def every_response(headers, req):
    if "randomId" not in req.cookies:
        headers.add("Set-Cookie", "randomId=abc; Max-Age=86400")


@io.on("connection")
def on_connection(socket):
    socket.join(socket.request.session.sid)  # one room per browser session

    @socket.on("my event")
    def my_event():
        s = socket.request.session
        s.reload()
        s["count"] = s.get("count", 0) + 1
        s.save()
        return s["count"]  # the return value is the acknowledgement


@app.after_request
def cors(response):
    origin = request.headers.get("Origin")
    if origin == CORS_ORIGIN:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers.add("Vary", "Origin")
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET,POST"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "")
    return response


@app.get("/")
def index():
    session["count"] = session.get("count", 0)  # make sure the session is stored
    return render_template("index.html", count=session["count"])


@app.post("/incr")
def incr():
    session["count"] = session.get("count", 0) + 1
    io.to(session.sid).emit("current count", session["count"])
    return str(session["count"])


@app.post("/logout")
def logout():
    io.logout()  # clears the session and disconnects its sockets, on every node
    return "", 204
