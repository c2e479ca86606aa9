"""Run fuzz targets one after the other and print, for each, the executions, the time
and the crashes: ``python fuzz/run.py RUNS TARGET.py...`` (``make fuzz``).

libFuzzer's own output goes to ``$FUZZ_WORK/logs/<target>.log``; a crash leaves its
reproducer in ``$FUZZ_WORK/artifacts/`` (rerun: ``python fuzz/<target>.py <reproducer>``).
``FUZZ_WORK`` defaults to a folder in the temporary directory.
Exits non-zero if any target crashed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ARTIFACTS, WORK  # noqa: E402

LOGS = WORK / "logs"


def artifacts() -> set[Path]:
    if not ARTIFACTS.is_dir():
        return set()
    return {p for p in ARTIFACTS.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-",
                                                                 "leak-"))}


def main(runs: str, targets: list[str]) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    failed = 0
    for target in targets:
        name = Path(target).stem
        log = LOGS / f"{name}.log"
        before = artifacts()
        began = time.monotonic()
        with open(log, "w") as out:
            code = subprocess.call(
                [sys.executable, target, f"-runs={runs}", "-print_final_stats=1",
                 "-timeout=20", "-rss_limit_mb=2048"],
                stdout=out, stderr=subprocess.STDOUT)
        elapsed = time.monotonic() - began
        text = log.read_text(errors="replace")
        done = re.search(r"Done (\d+) runs in (\d+) second", text)
        units = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
        execs = done.group(1) if done else units.group(1) if units else "?"
        crashes = sorted(artifacts() - before)
        if code != 0 and not crashes:
            crashes = [Path(f"(exit status {code}, see {log})")]
        print(f"{name}: {execs} executions in {elapsed:.0f} s, {len(crashes)} crashes"
              + "".join(f"\n  {c}" for c in crashes), flush=True)
        failed += bool(crashes)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
