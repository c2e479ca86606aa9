"""``python -m demo``: the demo on eventlet's WSGI server."""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402

from demo.app import app, io  # noqa: E402

host = os.environ.get("HOST", "127.0.0.1")
port = int(os.environ.get("PORT", "5000"))
print(f"flask_ioengine demo on http://{host}:{port}/", flush=True)
io.run(app, host=host, port=port)
