"""Write results: one JSON per benchmark, plus a summary (JSON and a markdown table) with the paper's
averages. Runs of ``azr eval math`` and ``azr eval code`` into the same ``--out`` folder combine into one
summary, so the overall score mean(code average, math average) appears once both halves exist.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from azr.eval.data import CODE_BENCHMARKS, PAPER_MATH
from azr.eval.metrics import Metric, headline
from azr.eval.runner import BenchmarkResult

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"


def result_to_dict(result: BenchmarkResult) -> dict[str, Any]:
    metrics = {k: (v.to_dict() if isinstance(v, Metric) else v) for k, v in result.metrics.items()}
    top = headline(result.metrics)
    return {
        "benchmark": result.benchmark,
        "kind": result.kind,
        "headline": top.to_dict() if top else None,
        "metrics": metrics,
        "n_items": len(result.items) - len(result.excluded),
        "excluded": result.excluded,
        "config": result.config,
        "seconds": result.seconds,
        "items": [asdict(item) for item in result.items],
    }


def _clean(obj: Any) -> Any:
    """NaN is not JSON: write null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def write_result(out_dir: str | Path, result: BenchmarkResult) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result.benchmark}.json"
    path.write_text(json.dumps(_clean(result_to_dict(result)), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every benchmark result JSON in the folder (the summary files excluded)."""
    results = []
    for path in sorted(Path(out_dir).glob("*.json")):
        if path.name == SUMMARY_JSON:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "benchmark" in data and "headline" in data:
            results.append(data)
    return results


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline per benchmark; math average over the paper's six math sets present (GSM8K is reported
    but, as in the paper, not averaged); code average over the code sets present; overall =
    mean(code average, math average) when both exist."""
    rows = []
    for r in results:
        top = r.get("headline") or {}
        rows.append({
            "benchmark": r["benchmark"], "kind": r["kind"], "metric": top.get("name"), "value": top.get("value"),
            "stderr": top.get("stderr"), "ci_low": top.get("ci_low"), "ci_high": top.get("ci_high"),
            "n": top.get("n"), "model": (r.get("config") or {}).get("model"),
            "pass_at_k": {k: v["value"] for k, v in r["metrics"].items() if k.startswith("pass@") and k != "pass@1"},
        })
    by_name = {row["benchmark"]: row for row in rows if row["value"] is not None}
    math_sets = [b for b in PAPER_MATH if b in by_name]
    code_sets = [b for b in CODE_BENCHMARKS if b in by_name]
    math_avg = _mean([by_name[b]["value"] for b in math_sets])
    code_avg = _mean([by_name[b]["value"] for b in code_sets])
    overall = (math_avg + code_avg) / 2 if math_avg is not None and code_avg is not None else None
    return {
        "rows": rows,
        "math_average": math_avg, "math_average_over": math_sets,
        "code_average": code_avg, "code_average_over": code_sets,
        "overall": overall,
        "models": sorted({str(row["model"]) for row in rows}),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def to_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "| benchmark | problems | metric | score (%) | ± s.e. | 95% CI | pass@k |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for row in summary["rows"]:
        ci = "-" if row["ci_low"] is None else f"[{_pct(row['ci_low'])}, {_pct(row['ci_high'])}]"
        passk = ", ".join(f"{k} {_pct(v)}" for k, v in row["pass_at_k"].items()) or "-"
        lines.append(f"| {row['benchmark']} | {row['n'] or '-'} | {row['metric'] or '-'} | {_pct(row['value'])} "
                     f"| {_pct(row['stderr'])} | {ci} | {passk} |")
    lines.append("")
    lines.append(f"- Math average ({', '.join(summary['math_average_over']) or 'none'}): "
                 f"{_pct(summary['math_average'])}")
    lines.append(f"- Code average ({', '.join(summary['code_average_over']) or 'none'}): "
                 f"{_pct(summary['code_average'])}")
    lines.append(f"- Overall = mean(code average, math average): {_pct(summary['overall'])}")
    if len(summary["models"]) > 1:
        lines.append(f"- WARNING: this folder mixes results of several models: {', '.join(summary['models'])}")
    lines.append("")
    lines.append("The paper's math average uses AIME24, AIME25, AMC23, MATH500, Minerva and OlympiadBench "
                 "(GSM8K is reported, not averaged); its code average also includes LiveCodeBench and "
                 "uses HumanEval+, while this harness runs HumanEval (base tests) and MBPP+.")
    return "\n".join(lines) + "\n"


def write_summary(out_dir: str | Path) -> tuple[Path, Path, dict[str, Any]]:
    """(Re)build summary.json and summary.md from every result in the folder."""
    out = Path(out_dir)
    summary = summarize_results(load_results(out))
    json_path, md_path = out / SUMMARY_JSON, out / SUMMARY_MD
    json_path.write_text(json.dumps(_clean(summary), indent=1) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(summary), encoding="utf-8")
    return json_path, md_path, summary
