"""flask_ioengine soak server (protocol: soak/servers/common.py).

    python soak/servers/ioengine_server.py --port 5000 [--ping-interval 1 --ping-timeout 1]
                                           [--max-write-buffer 262144]
"""

import eventlet

eventlet.monkey_patch()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Stats, parse_args, ready  # noqa: E402
from flask import Flask, Response, request  # noqa: E402

from flask_ioengine import IOEngine  # noqa: E402


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = {"ping_interval": args.ping_interval, "ping_timeout": args.ping_timeout}
    if args.max_write_buffer is not None:
        options["max_write_buffer"] = args.max_write_buffer
    app = Flask(__name__)
    io = IOEngine(app, **options)
    stats = Stats()
    room = io.to("room")

    def start_broadcast(n: int, size: int) -> None:
        eventlet.spawn(stats.run_broadcast, n, size,
                       lambda i, payload: room.emit("msg", i, payload),
                       lambda: eventlet.sleep(0))

    @io.on("connection")
    def on_connection(socket):
        role = stats.role_of(socket.handshake.get("auth"))
        stats.on_connect(role)
        socket.join("room")
        sid = socket.id

        @socket.on("echo")
        def echo(*args):
            return args

        @socket.on("flood")
        def flood(seq=None):
            stats.on_flood(sid, seq)

        @socket.on("flood_end")
        def flood_end():
            return stats.flood_end()

        @socket.on("broadcast")
        def broadcast(n, size):
            start_broadcast(int(n), int(size))
            return "started"

        @socket.on("disconnect")
        def disconnect(reason):
            stats.on_disconnect(sid, role, reason)

    @app.get("/stats")
    def get_stats():
        return Response(stats.json(), mimetype="application/json")

    @app.get("/broadcast")
    def http_broadcast():
        start_broadcast(int(request.args["n"]), int(request.args["size"]))
        return "started"

    eventlet.spawn_after(0, ready, args.port)
    io.run(app, host="127.0.0.1", port=args.port, max_size=args.max_size)


if __name__ == "__main__":
    main()
