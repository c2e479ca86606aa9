"""What the fuzz targets share: seeds and the libFuzzer command line.

``run(test_one_input, seeds)``: when no corpus directory is given on the command line, the
seeds are written to ``$FUZZ_WORK/corpus/<target>/``, which libFuzzer starts from and adds
to (so later runs go on from what earlier ones found);
crash reproducers go to ``$FUZZ_WORK/artifacts/`` (default: a folder in the temporary
directory, so runs leave nothing in the work tree).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

WORK = Path(os.environ.get("FUZZ_WORK") or Path(tempfile.gettempdir()) / "flask_ioengine-fuzz")
ARTIFACTS = WORK / "artifacts"


def run(test_one_input: Callable[[bytes], None], seeds: list[bytes]) -> None:
    import atheris

    args = list(sys.argv)
    if not any(a.startswith("-artifact_prefix=") for a in args[1:]):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        args.append(f"-artifact_prefix={ARTIFACTS}/")
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = WORK / "corpus" / Path(args[0]).stem
        corpus.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        args.append(str(corpus))
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
