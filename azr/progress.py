"""A progress bar over training steps that shows the headline metrics as it advances."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

HEADLINE = ("solve/deduction/accuracy", "propose/deduction/valid_rate", "loss/total")


class StepProgress:
    def __init__(self, total: int, start: int = 0, console: Console | None = None, disable: bool = False) -> None:
        self.console = console or Console()
        self.disable = disable  # ranks other than 0 of a multi-process run stay silent
        self.progress = Progress(TextColumn("[bold]self-play"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"),
                                 console=self.console, transient=False, disable=disable)
        self.task = self.progress.add_task("", total=total, completed=start)

    def __enter__(self) -> StepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, line: str) -> None:
        if self.disable:
            return
        self.progress.console.print("  " + line, style="dim", highlight=False, markup=False, soft_wrap=True)

    def advance(self, metrics: Mapping[str, float]) -> None:
        shown = " ".join(f"{k.split('/')[-2] if k.count('/') > 1 else k.split('/')[-1]}={metrics[k]:.3g}"
                         for k in HEADLINE if k in metrics)
        self.progress.update(self.task, advance=1, description=shown)
