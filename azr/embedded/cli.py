"""``azr build-model``: build (or rebuild) the embedded model ahead of time.

Mount with ``app.command("build-model")(build_model_command)``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Optional

import typer


def build_model_command(
    name: str = typer.Option("embedded:tiny", help="Embedded model to build."),
    cache_dir: Optional[Path] = typer.Option(None, help="Cache root (default: $AZR_CACHE_DIR or ~/.cache/azr)."),
    seed: int = typer.Option(0, help="Build seed; the build is deterministic given it."),
    force: bool = typer.Option(False, "--force", help="Delete an existing build and build again."),
    heldout_out: Optional[Path] = typer.Option(
        None, help="Also write the fixed held-out task set (JSONL of Task records) to this file."
    ),
) -> None:
    """Build the embedded default model into the cache and print where it is."""
    from azr.embedded.resolve import embedded_model_dir, resolve_model_path

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        path = embedded_model_dir(name, cache_dir)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None
    if force and path.exists():
        shutil.rmtree(path)
    typer.echo(resolve_model_path(name, cache_dir, seed=seed))
    if heldout_out is not None:
        from azr.embedded.heldout import heldout_tasks, write_jsonl
        from sandbox import Sandbox

        with Sandbox(workers=2) as sb:
            write_jsonl(heldout_tasks(sb), heldout_out)
        typer.echo(f"held-out tasks written to {heldout_out}")
