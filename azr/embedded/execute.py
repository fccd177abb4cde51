"""Run grammar programs on candidate inputs in the sandbox and keep the runs that make good tasks.

One sandbox job per program: the program, its trace functions and a small wrapper that turns an
exception into a value, so one bad input does not void the other inputs of the same program.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from azr.embedded.grammar import Program
from azr.tasks.arguments import parse_arguments
from azr.tasks.errors import ParseError
from sandbox import Job, Sandbox, Value

MAX_OUTPUT_CHARS = 60  # longer outputs make poor targets for a tiny model (and waste tokens)

_WRAPPER = '''

def _azr_run(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", type(exc).__name__)
'''


@dataclass(frozen=True)
class Run:
    """One successful call ``f(input) == output`` with the value after each transform."""

    input: str  # canonical argument-list text
    output: str  # canonical literal text (sandbox.Value.text)
    trace: tuple[str, ...]


def canonical_input(text: str) -> str:
    """The canonical argument-list text the parsers would produce for ``text``."""
    parsed = parse_arguments(text)
    if isinstance(parsed, ParseError):
        raise ValueError(f"grammar produced an input the parser rejects: {text!r} ({parsed})")
    return parsed.text


def _unwrap(value: Value) -> str | None:
    if value.opaque:
        return None
    status, inner = value.to_python()  # type: ignore[misc]
    if status != "ok":
        return None
    text = Value.from_python(inner).text
    return None if Value(text).opaque else text


def run_programs(
    sandbox: Sandbox, programs: Sequence[Program], inputs: Sequence[Sequence[str]], seed: int = 0
) -> list[list[Run]]:
    """For each program, the runs on its inputs that succeed and return a short, non-None value."""
    jobs = []
    for program, args in zip(programs, inputs):
        text = "\n\n".join([program.source, *program.trace_sources]) + _WRAPPER
        exprs = []
        for a in args:
            exprs.append(f"_azr_run(f, {a})")
            exprs += [f"_azr_run(_t{i}, {a})" for i in range(len(program.trace_sources))]
        jobs.append(Job(text, exprs, seed=seed))
    results = sandbox.evaluate_many(jobs)
    out: list[list[Run]] = []
    for program, args, result in zip(programs, inputs, results):
        runs: list[Run] = []
        if result.status == "ok":
            width = 1 + len(program.trace_sources)
            for j, a in enumerate(args):
                values = [_unwrap(v) for v in result.values[j * width : (j + 1) * width]]
                output, trace = values[0], values[1:]
                if output is None or output == "None" or len(output) > MAX_OUTPUT_CHARS or None in trace:
                    continue
                runs.append(Run(input=a, output=output, trace=tuple(t for t in trace if t is not None)))
        out.append(runs)
    return out
