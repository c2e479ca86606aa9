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
