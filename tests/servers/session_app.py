"""A Flask app exercising the session adapter (``io.engine.use(app.session_interface)``).

``python session_app.py PORT`` serves it with ``io.run``; the environment chooses the
session: ``SESSION_TYPE`` = ``cachelib`` (files under ``SESSION_DIR``), ``redis``
(``REDIS_URL``) or ``cookie`` (Flask's signed-cookie session, no Flask-Session).

Views: ``GET /get`` (the session as JSON with its sid), ``POST /set`` (form fields into
the session), ``POST /destroy`` (clears it: Flask-Session deletes it from the store).
With ``RELOAD_INTERVAL`` (seconds) the engine reloads every socket's session
periodically (``session_reload_interval``).

Socket events, each acked with what the handler saw (see ``describe``): ``info``,
``reload``, ``set`` (key, value, then ``save()``), ``save`` (``save()`` only),
``bg save`` (key, value, saved by a green thread outside any request; it emits
``bg saved`` when done), ``incr while reloaded`` (reload/increment, waits for the
periodic reload to run once, then saves), ``incr while a view waits`` (the same, with a
POST /incr arriving before the save) and ``incr`` (the demo's counter).
"""

import eventlet

eventlet.monkey_patch()

import os
import sys
import threading
import time

import flask
from flask import Flask, jsonify, request, session

from flask_ioengine import IOEngine
from flask_ioengine.session import SessionSaveError

SESSION_TYPE = os.environ.get("SESSION_TYPE", "cachelib")

app = Flask(__name__)
app.config["SECRET_KEY"] = "session-tests"
if SESSION_TYPE != "cookie":
    from flask_session import Session

    app.config["SESSION_TYPE"] = SESSION_TYPE
    if SESSION_TYPE == "cachelib":
        from cachelib import FileSystemCache

        app.config["SESSION_CACHELIB"] = FileSystemCache(os.environ["SESSION_DIR"], threshold=0)
    else:
        import redis

        app.config["SESSION_REDIS"] = redis.from_url(os.environ["REDIS_URL"])
    Session(app)

# RELOAD_INTERVAL: session_reload_interval (the periodic reload of every socket's session)
io = IOEngine(app, session_reload_interval=float(os.environ.get("RELOAD_INTERVAL", "0")))

# Count the session opens made for each handshake request (the adapter opens the session
# of ``socket.request`` on reload(), the periodic reload included).
opens: dict[int, int] = {}
_open_session = app.session_interface.open_session


# For "incr while a view waits": set when a POST /incr reaches the app (before its
# session is opened, so before it takes the session lock) and once it has opened it.
view_arrived = threading.Event()
view_opened = threading.Event()


def counting_open_session(app_, req):
    opens[id(req)] = opens.get(id(req), 0) + 1
    result = _open_session(app_, req)
    if req.path == "/incr":
        view_opened.set()
    return result


app.session_interface.open_session = counting_open_session
# reload() and the periodic check read server-side sessions by sid: count those too.
retrievals: dict[str, int] = {}
_retrieve = getattr(app.session_interface, "_retrieve_session_data", None)
if _retrieve is not None:
    def counting_retrieve(store_id):
        retrievals[store_id] = retrievals.get(store_id, 0) + 1
        return _retrieve(store_id)

    app.session_interface._retrieve_session_data = counting_retrieve


def reads(req, session) -> int:
    """How many times the session of ``req`` has been read from the store so far."""
    return opens.get(id(req), 0) + retrievals.get(f"session:{session.sid}", 0)


io.engine.use(app.session_interface)
_flask_wsgi = app.wsgi_app


def arrival(environ, start_response):
    if environ.get("PATH_INFO") == "/incr":
        view_arrived.set()
    return _flask_wsgi(environ, start_response)


app.wsgi_app = arrival


def public(s):
    """The session's data without Flask-Session's bookkeeping (``_permanent``)."""
    return {k: v for k, v in s.items() if not k.startswith("_")}


def describe(s):
    """What a handler (or a green thread) sees of ``s``, the socket's session."""
    in_request = flask.has_request_context()
    return {
        "sid": getattr(s, "sid", None),
        "type": type(s).__name__,
        "id": id(s),
        "data": public(s),
        "exists": s.exists,
        "gone": s.gone,
        "in_request": in_request,
        "flask_session_is_it": in_request and flask.session._get_current_object() is s,
    }


def error(exc):
    return {"error": type(exc).__name__, "message": str(exc),
            "is_session_save_error": isinstance(exc, SessionSaveError)}


@io.on("connection")
def on_connection(socket):
    s = socket.request.session

    @socket.on("info")
    def info():
        return describe(socket.request.session)

    @socket.on("reload")
    def reload():
        try:
            exists = socket.request.session.reload()
        except Exception as exc:
            return error(exc)
        return {"returned": exists, **describe(socket.request.session)}

    @socket.on("set")
    def set_(key, value):
        try:
            with socket.request.session.locked() as locked:
                locked[key] = value
                locked.save()
        except Exception as exc:
            return error(exc)
        return describe(socket.request.session)

    @socket.on("set without reload")
    def set_plain(key, value):
        flask.session[key] = value  # flask.session is the socket's session
        try:
            flask.session.save()
        except Exception as exc:
            return error(exc)
        return describe(flask.session)

    @socket.on("save")
    def save():
        try:
            socket.request.session.save()
        except Exception as exc:
            return error(exc)
        return describe(socket.request.session)

    @socket.on("bg save")
    def bg_save(key, value):
        def work():
            try:
                with s.locked():
                    s[key] = value
                    s.save()
                result = describe(s)
            except Exception as exc:
                result = error(exc)
            socket.emit("bg saved", result)

        eventlet.spawn_n(work)
        return "spawned"

    @socket.on("incr while reloaded")
    def incr_while_reloaded():
        """reload, increment, then (still before save) let the periodic reload of the
        session run once, then save: the increment must survive."""
        req = socket.request
        s.reload()
        s["count"] = s.get("count", 0) + 1
        mine = s["count"]
        seen = reads(req, s)
        deadline = time.monotonic() + 10
        while reads(req, s) == seen and time.monotonic() < deadline:
            eventlet.sleep(0.01)  # polling, bounded: until the periodic reload ran
        ran = reads(req, s) > seen
        s.save()
        return {"mine": mine, "after_save": s.get("count"), "periodic_reload_ran": ran}

    @socket.on("incr while a view waits")
    def incr_while_a_view_waits():
        """Like "incr while reloaded", then it asks the client for a POST /incr and saves
        only once that view has arrived (and, if the lock lets it, opened the session)."""
        global view_arrived, view_opened
        view_arrived, view_opened = threading.Event(), threading.Event()
        req = socket.request
        s.reload()
        s["count"] = s.get("count", 0) + 1
        seen = reads(req, s)
        deadline = time.monotonic() + 10
        while reads(req, s) == seen and time.monotonic() < deadline:
            eventlet.sleep(0.01)
        ran = reads(req, s) > seen
        socket.emit("post now")
        arrived = view_arrived.wait(10)
        # the view must wait for our save: it cannot open the session while we hold it
        got_in = view_opened.wait(2)
        s.save()
        return {"periodic_reload_ran": ran, "view_arrived": arrived, "view_got_in": got_in}

    @socket.on("incr")
    def incr():
        s.reload()
        s["count"] = s.get("count", 0) + 1
        s.save()
        return s["count"]


@app.get("/get")
def get():
    return jsonify(sid=getattr(session, "sid", None), data=public(session))


@app.post("/set")
def set_view():
    for key, value in request.form.items():
        session[key] = value
    return jsonify(sid=getattr(session, "sid", None), data=public(session))


@app.post("/incr")
def incr_view():
    session["count"] = session.get("count", 0) + 1
    return str(session["count"])


@app.post("/destroy")
def destroy():
    sid = getattr(session, "sid", None)
    session.clear()
    return jsonify(sid=sid)


if __name__ == "__main__":
    io.run(app, port=int(sys.argv[1]))
