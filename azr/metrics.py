"""Per-step metrics: one JSON line per step in ``metrics.jsonl``, a compact console line, and optionally
TensorBoard and Weights & Biases.

Names are ``group/name`` with stable groups, so dashboards and scripts can rely on them:
``propose/`` (proposal validity, learnability), ``solve/`` (accuracy per task type), ``reward/`` and
``loss/`` (the optimisation), ``buffer/`` (size, additions), ``time/`` (seconds per phase), plus
``eval/``, ``optim/``, ``sandbox/`` and ``gen/`` where useful. The JSONL file is the record of a run:
it is always written, whatever ``report_to`` says.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

REPORTERS = ("none", "tensorboard", "wandb")
JSONL_NAME = "metrics.jsonl"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)  # ints, floats, numpy scalars, 0-d tensors
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r}: expected a number, got {type(value).__name__} {value!r}") from None


def _check_name(name: str) -> None:
    group, _, rest = name.partition("/")
    if not group or not rest:
        raise ValueError(f"metric {name!r}: names must be 'group/name', e.g. 'solve/deduction/accuracy'")


class MetricsLogger:
    """Writes each step's metrics to every sink. Use as a context manager or call :meth:`close`.

    ``resume_step``: when a run resumes from a checkpoint at that step, lines for later steps (logged
    after the checkpoint, before the interruption) are dropped, so the file never repeats a step.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        report_to: Sequence[str] = ("none",),
        *,
        run_name: str = "",
        wandb_project: str = "azr",
        config: Mapping[str, Any] | None = None,
        console: Console | None = None,
        print_every: int = 1,
        resume_step: int | None = None,
    ) -> None:
        unknown = [r for r in report_to if r not in REPORTERS]
        if unknown:
            raise ValueError(
                f"report_to: unknown reporter {unknown[0]!r}; expected any of {', '.join(REPORTERS)}"
            )
        wandb = _import_wandb() if "wandb" in report_to else None  # fail before creating anything
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.output_dir / JSONL_NAME
        if resume_step is not None:
            self._drop_after(resume_step)
        self.console = console if console is not None else Console()
        self.print_every = max(1, print_every)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if not _ends_with_newline(self.path):
            self._file.write("\n")  # end a line torn by a killed writer, so the next record stays parseable
        self._tensorboard = None
        self._wandb = None
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(log_dir=str(self.output_dir / "tensorboard"))
        if wandb is not None:
            self._wandb = wandb.init(
                project=wandb_project,
                name=run_name or self.output_dir.name,
                dir=str(self.output_dir),
                config=dict(config or {}),
                resume="allow",
            )

    def log(self, step: int, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Record one step. Non-finite values are written as ``null`` in the JSONL file (strict JSON)."""
        values = {}
        for name, value in metrics.items():
            _check_name(name)
            values[name] = _number(name, value)
        record: dict[str, Any] = {"step": int(step), "timestamp": round(time.time(), 3)}
        record.update({k: (v if math.isfinite(v) else None) for k, v in sorted(values.items())})
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        if self._tensorboard is not None:
            for name, value in values.items():
                self._tensorboard.add_scalar(name, value, global_step=step)
            self._tensorboard.flush()
        if self._wandb is not None:
            self._wandb.log(values, step=step)
        if step % self.print_every == 0:
            self.console.print(format_line(step, values), highlight=False, soft_wrap=True)
        return values

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [r for r in read_metrics(self.path) if r["step"] <= step]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.path)


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise RuntimeError(
            "report_to includes 'wandb' but the wandb package is not installed: "
            "pip install 'azr[wandb]', or remove wandb from trainer.report_to"
        ) from None
    return wandb


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def format_line(step: int, values: Mapping[str, float]) -> str:
    """``step 3 | loss pg=0.12 | solve deduction/accuracy=0.5 ...``: one segment per group."""
    groups: dict[str, list[str]] = {}
    for name in sorted(values):
        group, _, rest = name.partition("/")
        groups.setdefault(group, []).append(escape(f"{rest}={values[name]:.4g}"))
    return " | ".join(
        [f"[bold]step {step}[/bold]", *(f"[cyan]{escape(g)}[/cyan] {' '.join(v)}" for g, v in groups.items())]
    )


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file; malformed lines (a writer killed mid-line) are skipped."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
