"""One math grading worker: ``python -m azr.eval.math_worker MEMORY_MB``.

Reads JSON lines ``[gold, pred]`` on stdin and writes ``[correct, status]`` lines on stdout, after a
first ``"ready"`` line once math-verify is imported. The parent kills it when an item overruns.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * resource.getpagesize()
    except OSError:
        return 0


def main(argv: list[str]) -> int:
    from azr.eval.math_equiv import verify_latex, warm_up

    memory_mb = int(argv[0]) if argv else 0
    warm_up()
    if memory_mb > 0:  # a MemoryError (counted wrong) instead of swapping the machine
        cap = _vm_bytes() + (memory_mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out = os.fdopen(sys.stdout.fileno(), "w", buffering=1, closefd=False)
    out.write('"ready"\n')
    for line in sys.stdin:
        try:
            gold, pred = json.loads(line)
            reply = [bool(verify_latex(str(gold), str(pred))), "ok"]
        except Exception as exc:  # noqa: BLE001 - any failure on model text is a wrong answer
            reply = [False, f"error: {type(exc).__name__}"]
        out.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
