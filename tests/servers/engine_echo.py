"""An Engine.IO-only echo server for the transport tests:
``python engine_echo.py PORT [opts-json] [hooks]``.

Echoes every message (text and binary); a text message "close" makes the server close
the session. Prints ``CLOSE <sid> <reason>`` when a session ends. Heartbeat tests use
short ping options.

With the third argument ``hooks`` it also installs, for the hook tests:

* ``initial_headers``: ``Set-Cookie: uid=1234; SameSite=Strict`` (handshakes only);
* ``headers``: ``Set-Cookie: randomId=abc; Max-Age=86400`` when the request has no
  ``randomId`` cookie;
* ``allow_request``: refuses with "denied by test" when the query has ``deny=1``;
* a middleware that refuses (``next(err)``) when the ``X-Refuse`` header is present;
* a ``headers`` hook trying to inject a header through CR/LF: in the value when the
  query has ``inject=1``, in the name when it has ``inject=2``.
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

import eventlet.wsgi  # noqa: E402

from flask_ioengine.engineio.server import Server  # noqa: E402

port = int(sys.argv[1])
options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
hooks = len(sys.argv) > 3 and sys.argv[3] == "hooks"
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")


def allow_request(request):
    if request.args.get("deny") == "1":
        return "denied by test"
    return True


if hooks:
    options["allow_request"] = allow_request
engine = Server(**options)


@engine.on("connection")
def connection(socket):
    def on_message(data):
        if data == "close":
            socket.close()
        elif isinstance(data, str) and data.startswith("blast:"):
            # "blast:N:SIZE": N messages of SIZE bytes (backpressure tests)
            _, n, size = data.split(":")
            for i in range(int(n)):
                if not socket.send(str(i % 10) * int(size)):
                    break
        else:
            socket.send(data)

    socket.on_message = on_message
    socket.on_close = lambda reason: print(f"CLOSE {socket.sid} {reason}", flush=True)


if hooks:

    @engine.on("initial_headers")
    def initial_headers(headers, request):
        headers.add("Set-Cookie", "uid=1234; SameSite=Strict")

    @engine.on("headers")
    def add_headers(headers, request):
        if "randomId" not in request.cookies:
            headers.add("Set-Cookie", "randomId=abc; Max-Age=86400")

    @engine.on("headers")
    def inject_headers(headers, request):
        inject = request.args.get("inject")
        if inject == "1":
            headers.add("X-Injected", "yes\r\nX-Evil: value")
        elif inject == "2":
            headers.add("X-Injected\r\nX-Evil", "name")

    def refuse_middleware(request, next):
        if "X-Refuse" in request.headers:
            next(Exception("nope"))
        else:
            next()

    engine.use(refuse_middleware)


def app(environ, start_response):
    if environ["PATH_INFO"].startswith(engine.path):
        return engine.wsgi(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


print("READY", flush=True)
eventlet.wsgi.server(eventlet.listen(("127.0.0.1", port)), app, log_output=False)
