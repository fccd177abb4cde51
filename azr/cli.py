"""The `azr` command line: `azr train`, `azr export`, `azr buffer ...`, `azr eval ...`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Absolute Zero-style self-play RL.")

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml"


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command(context_settings={"allow_extra_args": False})
def train(
    args: list[str] = typer.Argument(None, help="[CONFIG.yaml] then dotted overrides, e.g. trainer.max_steps=20"),
    resume: Path = typer.Option(None, "--resume", help="continue the run in this output directory"),
) -> None:
    """Run self-play training (default: configs/tiny.yaml on the embedded tiny model)."""
    from azr.checkpoint import CheckpointError
    from azr.components import RunError
    from azr.config import ConfigError, load_config

    args = list(args or [])
    config_path: Path | None = None
    if args and "=" not in args[0] and args[0].endswith((".yaml", ".yml")):
        config_path = Path(args.pop(0))
    if resume is not None:
        if not resume.is_dir():
            _fail(f"--resume: {resume} is not a run directory")
        if config_path is None:
            config_path = resume / "config.yaml"
        args += [f"trainer.output_dir={resume}", "trainer.resume=auto"]
    if config_path is None:
        config_path = DEFAULT_CONFIG
    try:
        cfg = load_config(config_path, args)
    except ConfigError as exc:
        _fail(str(exc))
    from azr.selfplay import train as run_training

    try:
        final = run_training(cfg)
    except (RunError, CheckpointError, ConfigError) as exc:
        _fail(str(exc))
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, rank 0 speaks for the run
        typer.echo(f"final checkpoint: {final}")


@app.command()
def export(
    source: Path = typer.Argument(..., help="a run directory (its latest checkpoint) or a checkpoint directory"),
    merge: Path = typer.Option(..., "--merge", help="new or empty folder for the full model + tokenizer "
                               "(LoRA adapters merged into the base)"),
    role: str = typer.Option(None, "--role", help="per-role LoRA runs: the adapter to merge, propose or solve "
                             "[default: solve]"),
) -> None:
    """Write a run's model as one Hugging Face folder that from_pretrained loads (LoRA merged)."""
    from azr.export import ExportError
    from azr.export import export as run_export

    try:
        ckpt = run_export(source, merge, role)
    except ExportError as exc:
        _fail(str(exc))
    typer.echo(f"exported {ckpt} -> {merge}")


def _register() -> None:
    from azr.buffer.cli import app as buffer_app
    from azr.embedded.cli import build_model_command
    from azr.eval.cli import app as eval_app

    app.command("build-model")(build_model_command)

    app.add_typer(buffer_app, name="buffer", help="Inspect, import and export a task buffer.")
    app.add_typer(eval_app, name="eval", help="Evaluate checkpoints on math and code benchmarks.")


_register()

if __name__ == "__main__":
    app()
