"""On-disk cache of MBPP+ reference runs (canonical outputs and their run times).

Running the 378 canonical solutions on their ~41k inputs costs about a minute of CPU (a few tasks sum
ranges of 10^8), so, like EvalPlus, we keep the result. An entry is keyed by the hash of the exact
job (program + expressions + harness version), so a changed dataset or harness never reads a stale
entry. Entries hold the sandbox's canonical literal texts, read back with the safe literal parser.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

CACHE_VERSION = "1"


def cache_dir() -> Path:
    """``$AZR_CACHE_DIR/eval/mbppplus``, else ``$XDG_CACHE_HOME/azr/...``, else ``~/.cache/azr/...``."""
    root = os.environ.get("AZR_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "azr"
    return base / "eval" / "mbppplus"


def job_key(program: str, exprs: tuple[str, ...]) -> str:
    digest = hashlib.sha256(CACHE_VERSION.encode())
    for part in (program, *exprs):
        digest.update(b"\0" + part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def load(key: str) -> dict | None:
    """``{"texts": [...], "error": str | None}`` or None when absent or unreadable."""
    path = cache_dir() / f"{key}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("texts"), list):
        return None
    return entry


def store(key: str, texts: list[str], error: str | None) -> None:
    """Write atomically; a read-only cache location only costs the recomputation next time."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"texts": texts, "error": error}, fh)
        os.replace(tmp, directory / f"{key}.json")
    except OSError:
        pass
