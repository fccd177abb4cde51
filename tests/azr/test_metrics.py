"""MetricsLogger writes real files: metrics.jsonl and TensorBoard event files."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from rich.console import Console

from azr.metrics import MetricsLogger, format_line, read_metrics


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_jsonl_one_line_per_step_and_console(tmp_path):
    console, out = _console()
    with MetricsLogger(tmp_path, ["none"], console=console) as logger:
        logger.log(1, {"solve/deduction/accuracy": 0.5, "loss/pg": torch.tensor(0.25), "time/step": 3})
        logger.log(2, {"solve/deduction/accuracy": 0.75, "reward/mean": float("nan"), "buffer/size": 10})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["step"] == 1 and first["solve/deduction/accuracy"] == 0.5 and first["loss/pg"] == 0.25
    assert first["time/step"] == 3.0 and "timestamp" in first
    assert json.loads(lines[1])["reward/mean"] is None  # NaN -> null keeps the file strict JSON
    text = out.getvalue()
    assert "step 1" in text and "solve deduction/accuracy=0.5" in text and "loss pg=0.25" in text
    assert not (tmp_path / "tensorboard").exists()


def test_appends_across_runs_and_resume_drops_later_steps(tmp_path):
    console, _ = _console()
    with MetricsLogger(tmp_path, console=console) as logger:
        for step in range(1, 5):
            logger.log(step, {"loss/total": step})
    with (tmp_path / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 5, "loss/to')  # a writer killed mid-line
    with MetricsLogger(tmp_path, console=console, resume_step=2) as logger:
        logger.log(3, {"loss/total": 30})
    assert [(r["step"], r["loss/total"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == [
        (1, 1),
        (2, 2),
        (3, 30),
    ]


def test_torn_line_does_not_swallow_the_next_record(tmp_path):
    console, _ = _console()
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss/total": 1}\n{"step": 2, "lo')
    with MetricsLogger(tmp_path, console=console) as logger:
        logger.log(3, {"loss/total": 3})
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 3]


def test_tensorboard_event_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    console, _ = _console()
    with MetricsLogger(tmp_path, ["tensorboard"], console=console) as logger:
        logger.log(1, {"propose/valid_rate": 0.25, "time/step": 1.5})
        logger.log(2, {"propose/valid_rate": 0.5})
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"propose/valid_rate", "time/step"}
    assert [(e.step, e.value) for e in acc.Scalars("propose/valid_rate")] == [(1, 0.25), (2, 0.5)]
    assert (tmp_path / "metrics.jsonl").exists()


def test_wandb_requested_but_missing_is_a_clear_error(tmp_path):
    try:
        import wandb  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("wandb is installed here; the missing-package path cannot be exercised")
    with pytest.raises(RuntimeError, match="wandb package is not installed"):
        MetricsLogger(tmp_path / "run", ["tensorboard", "wandb"])
    assert not (tmp_path / "run").exists()  # failed before creating anything


def test_bad_input_is_named(tmp_path):
    console, _ = _console()
    with pytest.raises(ValueError, match="unknown reporter 'tensorbord'"):
        MetricsLogger(tmp_path, ["tensorbord"])
    with MetricsLogger(tmp_path, console=console) as logger:
        with pytest.raises(ValueError, match="metric 'accuracy': names must be 'group/name'"):
            logger.log(1, {"accuracy": 1.0})
        with pytest.raises(TypeError, match="metric 'solve/answer': expected a number, got str"):
            logger.log(1, {"solve/answer": "six"})


def test_format_line_groups_by_prefix():
    line = format_line(7, {"solve/b": 2.0, "loss/pg": math.pi, "solve/a": 1.0})
    assert line == "[bold]step 7[/bold] | [cyan]loss[/cyan] pg=3.142 | [cyan]solve[/cyan] a=1 b=2"
