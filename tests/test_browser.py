"""The demo page in a real browser: headless Debian Chromium driven by playwright-core
(``tests/js/browser_demo.js``). Two tabs of one browser context share the session:
an increment in one shows in both, and logging out disconnects both."""

from __future__ import annotations

import json
import os

import pytest

from helpers import run_node

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (Debian package chromium)")


@pytest.mark.parametrize("session_type", ["cachelib", "redis"])
def test_two_tabs_share_the_session_counter_and_logout(demo_server, session_type, tmp_path):
    demo = demo_server(session_type)
    report = run_node("browser_demo.js", json.dumps({
        "url": demo.url + "/", "screenshot": str(tmp_path / "logged-out.png")}), timeout=120)
    assert "error" not in report, f"{report['error']}\nsteps: {report['steps']}\n" \
                                  f"console: {report['console']}"
    assert report["steps"] == ["both connected", "both counted", "both counted again",
                               "both disconnected", "reloaded"]
    before = report["counts"]["before"]
    assert before[0] == before[1]
    assert report["counts"]["after"] == [before[0] + 2] * 2
    assert report["states"] == {"tab1": "disconnected", "tab2": "disconnected"}
    assert report["counts"]["reloaded"] == 0
    session = [c for c in report["cookies"] if c["name"] == "session"]
    assert len(session) == 1 and session[0]["httpOnly"] is True
    assert not [line for line in report["console"] if "pageerror" in line], report["console"]
