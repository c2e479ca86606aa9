"""python-socketio (eventlet) soak server (protocol: soak/servers/common.py): a Flask app
wrapped by ``socketio.WSGIApp``, served by eventlet's WSGI server — what Flask-SocketIO
does with ``async_mode="eventlet"``, without its extra layer.

    bench/.venv/bin/python soak/servers/pysio_server.py --port 5000 [--ping-interval 1 ...]

``--max-write-buffer`` is accepted and ignored: python-socketio has no such limit.
"""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import eventlet.wsgi  # noqa: E402
import socketio  # noqa: E402
from common import Stats, parse_args, ready  # noqa: E402
from flask import Flask, Response, request  # noqa: E402


def main() -> None:
    args = parse_args()
    sio = socketio.Server(async_mode="eventlet", ping_interval=args.ping_interval,
                          ping_timeout=args.ping_timeout, logger=False, engineio_logger=False)
    app = Flask(__name__)
    stats = Stats()
    roles: dict[str, str] = {}

    def start_broadcast(n: int, size: int) -> None:
        eventlet.spawn(stats.run_broadcast, n, size,
                       lambda i, payload: sio.emit("msg", (i, payload), to="room"),
                       lambda: eventlet.sleep(0))

    @sio.on("connect")
    def on_connect(sid, environ, auth=None):
        role = stats.role_of(auth)
        roles[sid] = role
        stats.on_connect(role)
        sio.enter_room(sid, "room")

    @sio.on("echo")
    def echo(sid, *args):
        return args

    @sio.on("flood")
    def flood(sid, seq=None):
        stats.on_flood(sid, seq)

    @sio.on("flood_end")
    def flood_end(sid):
        return stats.flood_end()

    @sio.on("broadcast")
    def broadcast(sid, n, size):
        start_broadcast(int(n), int(size))
        return "started"

    @sio.on("disconnect")
    def on_disconnect(sid, reason=None):
        stats.on_disconnect(sid, roles.pop(sid, "client"), reason)

    @app.get("/stats")
    def get_stats():
        return Response(stats.json(), mimetype="application/json")

    @app.get("/broadcast")
    def http_broadcast():
        start_broadcast(int(request.args["n"]), int(request.args["size"]))
        return "started"

    wsgi = socketio.WSGIApp(sio, app)
    sock = eventlet.listen(("127.0.0.1", args.port))
    eventlet.spawn_after(0, ready, args.port)
    eventlet.wsgi.server(sock, wsgi, log_output=False, max_size=args.max_size)


if __name__ == "__main__":
    main()
