"""The README's example app under the three run modes, each started for real and driven
by the official engine.io-client: ``io.run`` (python app.py), ``flask run`` and gunicorn
with the project's eventlet worker."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from helpers import PYTHON, ROOT, Proc, free_port, run_node

EXAMPLE = ROOT / "examples" / "quickstart.py"
BIN = Path(sys.executable).parent


def test_readme_shows_the_example_app():
    readme = (ROOT / "README.md").read_text()
    code = EXAMPLE.read_text()
    body = code[code.index("from flask import"):code.index('if __name__ == "__main__":')]
    for line in body.splitlines():
        line = re.sub(r"\s+# noqa: E402$", "", line)
        assert line in readme, f"README lacks the example line {line!r}"


def _command(mode: str, port: int) -> list[str]:
    if mode == "io.run":
        return [PYTHON, str(EXAMPLE)]
    if mode == "flask run":
        return [str(BIN / "flask"), "--app", str(EXAMPLE), "run", "--port", str(port)]
    return [str(BIN / "gunicorn"), "-k", "flask_ioengine.gunicorn.EventletWorker", "-w", "1",
            "-b", f"127.0.0.1:{port}", "--chdir", str(EXAMPLE.parent), "quickstart:app"]


@pytest.mark.parametrize("mode", ["io.run", "flask run", "gunicorn"])
def test_example_app_serves_engine_io_client(mode, tmp_path):
    port = free_port()
    proc = Proc(_command(mode, port), port=port, env={"PORT": str(port)}, cwd=tmp_path,
                name=mode.replace(" ", "-").replace(".", "-"))
    try:
        result = run_node("run_mode.js", port)
    finally:
        proc.stop()
    upgraded, direct = result["results"]
    assert upgraded["open"] == "polling"
    assert upgraded["upgraded"] == "websocket" and upgraded["final"] == "websocket"
    assert direct["open"] == "websocket"
    for run in (upgraded, direct):
        assert run["messages"][0].startswith('0{"sid":')
        assert run["messages"][-1] == "31[1]"  # "my event" acked with the session count
    assert "Traceback" not in proc.output()
