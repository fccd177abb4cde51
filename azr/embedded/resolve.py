"""Turning a model name into a local path, building the embedded model on first use.

A file lock next to the cache entry makes concurrent first runs (two trainers, a test and a
trainer) wait for one build instead of doing it twice.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from azr.embedded.build import BUILD_INFO, BuildConfig, build_embedded_model

ENV_CACHE_DIR = "AZR_CACHE_DIR"
# Name -> cache directory. Bump the version suffix whenever the recipe changes, so stale builds
# are never reused.
EMBEDDED_MODELS = {"embedded:tiny": "embedded-tiny-v1"}
_REQUIRED_FILES = (BUILD_INFO, "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def default_cache_root() -> Path:
    """``$AZR_CACHE_DIR`` if set, else ``~/.cache/azr``."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "azr"


def embedded_model_dir(name: str = "embedded:tiny", cache_dir: str | Path | None = None) -> Path:
    """Where the embedded model ``name`` lives (built or not)."""
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"unknown embedded model {name!r}; available: {', '.join(sorted(EMBEDDED_MODELS))}")
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    return root / EMBEDDED_MODELS[name]


def is_built(path: Path) -> bool:
    return all((path / f).is_file() for f in _REQUIRED_FILES)


def resolve_model_path(
    name_or_path: str, cache_dir: str | Path | None = None, *, seed: int = 0, config: BuildConfig | None = None
) -> str:
    """A local path for ``name_or_path``: ``embedded:*`` names are built into the cache if absent;
    anything else (a hub id, a directory) is returned unchanged."""
    if not name_or_path.startswith("embedded:"):
        return name_or_path
    path = embedded_model_dir(name_or_path, cache_dir)
    if is_built(path):
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent / f"{path.name}.lock"):
        if is_built(path):  # another process built it while we waited
            return str(path)
        if path.exists():
            raise RuntimeError(
                f"{path} exists but is not a complete embedded model (missing one of {', '.join(_REQUIRED_FILES)}); "
                "delete that directory and run again to rebuild it"
            )
        _build_with_progress(name_or_path, path, seed, config)
    return str(path)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_with_progress(name: str, path: Path, seed: int, config: BuildConfig | None) -> None:
    from rich.console import Console
    from rich.errors import LiveError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    console.print(f"[bold]Building the embedded model {name}[/] into {path} (first use only; a few minutes on 2 cores)")
    bar = Progress(
        TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        bar.start()
    except LiveError:  # the caller already shows a live display: fall back to the log lines
        report = None  # type: ignore[assignment]
    try:
        info = build_embedded_model(path, seed=seed, config=config, progress=report, name=name)
    finally:
        bar.stop()
    rates = ", ".join(f"{k} {v:.0%}" for k, v in info.probe.items())
    console.print(
        f"Built {name}: {info.parameters / 1e6:.1f}M parameters, final loss {info.final_loss:.3f}, "
        f"{info.seconds.get('total', 0):.0f}s" + (f"; probe: {rates}" if rates else "")
    )
