"""The demo (``demo/app.py``, unchanged) plus one read-only route, for the multi-node
tests: ``GET /_cluster/sockets`` lists ``io.fetch_sockets()`` across every node.

    gunicorn -k flask_ioengine.gunicorn.EventletWorker -w 1 --pythonpath tests/servers \
        -b 127.0.0.1:PORT cluster_demo:app
"""

from flask import jsonify

from demo.app import app, io


@app.get("/_cluster/sockets")
def cluster_sockets():
    return jsonify([{"id": s.id, "rooms": sorted(s.rooms),
                     "remote": type(s).__name__ == "RemoteSocket"} for s in io.fetch_sockets()])
