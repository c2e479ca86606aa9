"""A gunicorn worker on eventlet's WSGI server (gunicorn 26+ no longer ships one).

    gunicorn -k flask_ioengine.gunicorn.EventletWorker -w 1 app:app

One worker per port: Engine.IO sessions live in the worker's memory, so several
workers need a sticky load balancer in front of them (see docs/deploy.md).
"""

from __future__ import annotations

import os
from typing import Any

import eventlet
import eventlet.greenio
import eventlet.hubs
import eventlet.wsgi
from gunicorn.workers.base import Worker

from .concurrency import get_backend


class EventletWorker(Worker):
    """Serves the app with ``eventlet.wsgi`` in green threads, heartbeating the arbiter."""

    def init_process(self) -> None:
        # Patch in the worker only (the arbiter imports this class too), before the app
        # is loaded, so the app's own imports get green sockets.
        eventlet.monkey_patch()
        eventlet.hubs.use_hub()
        super().init_process()

    def handle_quit(self, sig: int, frame: Any) -> None:
        # Signal handlers must not switch green threads themselves.
        eventlet.spawn(super().handle_quit, sig, frame)

    def handle_usr1(self, sig: int, frame: Any) -> None:
        eventlet.spawn(super().handle_usr1, sig, frame)

    def run(self) -> None:
        get_backend("eventlet")
        from .http import FastHttpProtocol, freeze_startup_objects
        from .workers import WorkerPool

        freeze_startup_objects()  # the app is loaded: what exists now lives as long as we do
        servers = []
        for listener in self.sockets:
            sock = eventlet.greenio.GreenSocket(getattr(listener, "sock", listener))
            sock.setblocking(True)
            servers.append(eventlet.spawn(
                eventlet.wsgi.server, sock, self.wsgi, log_output=False,
                custom_pool=WorkerPool(self.cfg.worker_connections), socket_timeout=None,
                protocol=FastHttpProtocol,
            ))
        try:
            while self.alive:
                self.notify()
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
                eventlet.sleep(1.0)
        finally:
            self.notify()
            for server in servers:
                server.kill()
