"""Shared fixtures: real servers on free 127.0.0.1 ports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from helpers import PYTHON, TESTS, Proc, free_port


@pytest.fixture
def engine_server() -> Iterator[Callable[..., Proc]]:
    """Start ``tests/servers/engine_echo.py`` with Engine.IO options; returns the Proc."""
    procs: list[Proc] = []

    def start(**options: object) -> Proc:
        port = free_port()
        proc = Proc([PYTHON, str(TESTS / "servers" / "engine_echo.py"), str(port),
                     json.dumps(options)], port=port, name="engine")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


# -- Redis and the demo (appended for the session/demo/browser tests) ----------------------


class RedisServer:
    """A ``redis-server`` started for the test session: ``.port``, ``.url``, ``.proc``."""

    def __init__(self, proc: Proc, port: int) -> None:
        self.proc = proc
        self.port = port
        self.host = "127.0.0.1"
        self.url = f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free 127.0.0.1 port, no persistence; stopped by PID."""
    import shutil

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    proc = Proc([exe, "--port", str(port), "--save", "", "--appendonly", "no",
                 "--bind", "127.0.0.1"], port=port, name="redis")
    yield RedisServer(proc, port)
    proc.stop()


class DemoServer:
    """A running demo process (``python -m demo`` unless told otherwise)."""

    def __init__(self, proc: Proc, port: int, session_type: str, session_dir: str,
                 redis_url: str | None, reload_interval: float) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.session_type = session_type
        self.session_dir = session_dir
        self.redis_url = redis_url
        self.reload_interval = reload_interval


@pytest.fixture(scope="session")
def demo_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., DemoServer]]:
    """``demo_server(session_type, run="module"|"flask"|"gunicorn", shared=True)``: the
    demo app with SESSION_RELOAD_INTERVAL=1 and CORS_ORIGIN=http://localhost:4200.
    Shared servers are started once per test session and per (session_type, run)."""
    shared: dict[tuple[str, str], DemoServer] = {}
    started: list[DemoServer] = []

    def start(session_type: str = "cachelib", run: str = "module",
              shared_ok: bool = True) -> DemoServer:
        key = (session_type, run)
        if shared_ok and key in shared:
            return shared[key]
        port = free_port()
        session_dir = str(tmp_path_factory.mktemp(f"demo-{session_type}-{run}"))
        env = {"PORT": str(port), "SESSION_DIR": session_dir, "SESSION_TYPE": session_type,
               "SESSION_RELOAD_INTERVAL": "1", "CORS_ORIGIN": "http://localhost:4200"}
        redis_url = None
        if session_type == "redis":
            redis_url = request.getfixturevalue("redis_server").url
            env["REDIS_URL"] = redis_url
        from pathlib import Path

        bin_dir = Path(PYTHON).parent
        if run == "module":
            args = [PYTHON, "-m", "demo"]
        elif run == "flask":
            args = [str(bin_dir / "flask"), "--app", "demo.app", "run", "--port", str(port),
                    "--host", "127.0.0.1"]
        elif run == "gunicorn":
            args = [str(bin_dir / "gunicorn"), "-k", "flask_ioengine.gunicorn.EventletWorker",
                    "-w", "1", "-b", f"127.0.0.1:{port}", "demo.app:app"]
        else:
            raise ValueError(run)
        proc = Proc(args, port=port, env=env, name=f"demo-{session_type}-{run}")
        demo = DemoServer(proc, port, session_type, session_dir, redis_url, 1.0)
        started.append(demo)
        if shared_ok:
            shared[key] = demo
        return demo

    yield start
    for demo in started:
        demo.proc.stop()


# -- Private, restartable Redis servers (appended for the multi-node tests) ----------------


class PrivateRedis:
    """A ``redis-server`` owned by one test module: ``.port``, ``.url``, ``stop()``,
    ``start()`` (again on the same port) and ``restart()``; stopped by PID."""

    def __init__(self, exe: str, port: int, name: str) -> None:
        self.exe = exe
        self.port = port
        self.host = "127.0.0.1"
        self.url = f"redis://127.0.0.1:{port}/0"
        self.name = name
        self.proc: Proc | None = None
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self.proc = Proc([self.exe, "--port", str(self.port), "--save", "", "--appendonly",
                          "no", "--bind", "127.0.0.1"], port=self.port, name=self.name)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[Callable[[], PrivateRedis]]:
    """``private_redis()`` starts a new redis-server for this module (stopped at its end):
    for tests that stop, restart or kill connections of their Redis."""
    import shutil

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    servers: list[PrivateRedis] = []

    def start() -> PrivateRedis:
        server = PrivateRedis(exe, free_port(), f"redis-private-{len(servers)}")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
