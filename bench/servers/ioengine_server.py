"""flask_ioengine benchmark server (see common.py for the protocol).

    bench/.venv/bin/python bench/servers/ioengine_server.py --port 5000 [--deflate]
"""

import eventlet

eventlet.monkey_patch()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, ready, unsupported  # noqa: E402
from flask import Flask  # noqa: E402

from flask_ioengine import IOEngine  # noqa: E402

#: option names under which flask_ioengine might one day accept permessage-deflate
DEFLATE_OPTIONS = ("per_message_deflate", "websocket_compression", "compression")


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = {"ping_interval": args.ping_interval, "ping_timeout": args.ping_timeout}
    if args.deflate:
        from flask_ioengine.engineio.server import Server as EngineServer

        known = set(IOEngine.OPTIONS) | set(EngineServer.OPTIONS)
        name = next((n for n in DEFLATE_OPTIONS if n in known), None)
        if name is None:
            unsupported("permessage-deflate: flask_ioengine has no such option")
        # compress every message (threshold 0), like the Node server and the clients here
        options[name] = {"threshold": 0} if name == "per_message_deflate" else True

    app = Flask(__name__)
    io = IOEngine(app, **options)

    @io.on("connection")
    def on_connection(socket):
        socket.join("room")

        @socket.on("echo")
        def echo(*args):
            return args

        @socket.on("broadcast")
        def broadcast(n, size):
            payload = "x" * int(size)
            room = io.to("room")
            for _ in range(int(n)):
                room.emit("msg", payload)
            return "done"

    @app.get("/")
    def index():
        return "bench"

    # READY once the listening socket exists: io.run() listens then serves, so announce
    # from a green thread that runs as soon as the server loop yields.
    eventlet.spawn_after(0, ready, args.port)
    io.run(app, host="127.0.0.1", port=args.port, max_size=args.max_size)


if __name__ == "__main__":
    main()
