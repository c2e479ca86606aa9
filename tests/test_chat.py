"""The chat example (demo/chat.py) with two users in headless Chromium."""

from __future__ import annotations

import json
import os

import pytest

from helpers import PYTHON, Proc, free_port, run_node

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"),
                                reason="/usr/bin/chromium is missing (Debian package chromium)")


def test_two_browser_users_chat():
    port = free_port()
    proc = Proc([PYTHON, "-m", "demo.chat"], port=port, env={"PORT": str(port)}, name="chat")
    try:
        report = run_node("browser_chat.js", json.dumps({"url": f"http://127.0.0.1:{port}/"}),
                          timeout=120)
    finally:
        proc.stop()
    assert "error" not in report, report
    assert report["steps"] == ["both here", "ann to bob", "bob to ann"]
    assert "ann: hello bob" in report["bobLog"] and "me: hi ann" in report["bobLog"]
    assert "bob: hi ann" in report["annLog"] and "ann: hello bob" not in report["annLog"]
    assert not report["errors"], report["errors"]
    assert "Traceback" not in proc.output()
