"""Helpers for tests that run real servers and real clients on 127.0.0.1.

Every wait is bounded; every process started here is stopped here, by its PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
PYTHON = sys.executable
NODE_PATH = str(ROOT / "node_modules")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not listening after {timeout}s")


class Proc:
    """A process started by a test, with its output captured to a file."""

    def __init__(self, args: list[str], port: int | None = None, env: dict | None = None,
                 cwd: Path = ROOT, name: str = "proc") -> None:
        self.port = port
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ioengine-{name}-{os.getpid()}-{port}.log"
        self.log = open(self.log_path, "w+b")
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", NODE_PATH=NODE_PATH)
        full_env.update(env or {})
        self.proc = subprocess.Popen(args, cwd=cwd, env=full_env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if port is not None:
            try:
                wait_port(port, proc=self.proc)
            except Exception:
                self.stop()
                raise RuntimeError(f"{name} did not start:\n{self.output()}") from None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def wait_output(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not seen in output:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def run_node(script: str, *args: object, timeout: float = 60.0) -> dict:
    """Run ``tests/js/<script>`` with Node; it prints one JSON object as its last line."""
    env = dict(os.environ, NODE_PATH=NODE_PATH)
    done = subprocess.run(["node", str(TESTS / "js" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise AssertionError(f"node {script} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1])
