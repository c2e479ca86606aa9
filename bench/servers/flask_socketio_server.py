"""Flask-SocketIO (async_mode="eventlet") benchmark server (see common.py for the protocol).

    bench/.venv/bin/python bench/servers/flask_socketio_server.py --port 5000 [--deflate]

eventlet's WebSocket accepts permessage-deflate whenever the client offers it, so
``--deflate`` changes nothing here: the load generator offers it only when asked to.
"""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, ready  # noqa: E402
from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402


def main() -> None:
    args = parse_args()
    app = Flask(__name__)
    sio = SocketIO(app, async_mode="eventlet", ping_interval=args.ping_interval,
                   ping_timeout=args.ping_timeout, logger=False, engineio_logger=False)

    @sio.on("connect")
    def on_connect(auth=None):
        join_room("room")

    @sio.on("echo")
    def echo(*args):
        return args

    @sio.on("broadcast")
    def broadcast(n, size):
        payload = "x" * int(size)
        for _ in range(int(n)):
            sio.emit("msg", payload, to="room")
        return "done"

    @app.get("/")
    def index():
        return "bench"

    eventlet.spawn_after(0, ready, args.port)
    sio.run(app, host="127.0.0.1", port=args.port, log_output=False, max_size=args.max_size)


if __name__ == "__main__":
    main()
