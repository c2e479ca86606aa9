"""An Engine.IO-only echo server for the transport tests: ``python engine_echo.py PORT [opts-json]``.

Echoes every message; a text message "close" makes the server close the session, and
"silence" stops answering nothing special (heartbeat tests use short ping options).
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
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
engine = Server(**options)


@engine.on("connection")
def connection(socket):
    def on_message(data):
        if data == "close":
            socket.close()
        else:
            socket.send(data)

    socket.on_message = on_message
    socket.on_close = lambda reason: print(f"CLOSE {socket.sid} {reason}", flush=True)


def app(environ, start_response):
    if environ["PATH_INFO"].startswith(engine.path):
        return engine.wsgi(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


print("READY", flush=True)
eventlet.wsgi.server(eventlet.listen(("127.0.0.1", port)), app, log_output=False)
