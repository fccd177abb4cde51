"""Checking solver answers through the real sandbox: correct, incorrect, malformed and hostile answers."""

from __future__ import annotations

import pytest

from azr.tasks import (
    CheckConfig,
    FormatError,
    Task,
    Verdict,
    check_answers,
    check_replies,
    get_task_type,
    validate,
)
from azr.tasks.prompts import input_answer_reply, output_answer_reply, program_answer_reply
from sandbox import Sandbox

MOD3 = "def f(x, k=3):\n    return x % k"
INDUCTION_PROGRAM = "def f(s, n=1):\n    return s[n:] + s[:n]"
INDUCTION_INPUTS = ["'abcd'", "'abcd', 2", "'hello', n=3", "'xy'", "'rotate', 0", "'python', 4", "'ab', 1", "'abc', n=2", "'zzz'", "'12345', 5"]  # fmt: skip


@pytest.fixture(scope="module")
def tasks(task_sandbox: Sandbox) -> dict[str, Task]:
    """Real validated tasks of each type (outputs computed by the sandbox, not written by hand)."""
    candidates = [
        Task(type="deduction", program=MOD3, inputs=["10"], outputs=[]),
        Task(type="abduction", program=MOD3, inputs=["10"], outputs=[]),
        Task(type="induction", program=INDUCTION_PROGRAM, inputs=INDUCTION_INPUTS, outputs=[], message="rotates a string"),
        Task(type="deduction", program="def f(a):\n    return [a, float(a), (a,)]", inputs=["6"], outputs=[]),
    ]  # fmt: skip
    outcomes = validate(task_sandbox, candidates)
    assert all(o.ok for o in outcomes), [o.detail for o in outcomes]
    return dict(zip(["deduction", "abduction", "induction", "typed"], (o.task for o in outcomes)))


def check(sb: Sandbox, task: Task, reply: str) -> Verdict:
    return check_replies(sb, [(task, reply)])[0]


def test_deduction(task_sandbox: Sandbox, tasks: dict[str, Task]) -> None:
    task = tasks["deduction"]
    assert check(task_sandbox, task, output_answer_reply("1")).correct
    assert not check(task_sandbox, task, output_answer_reply("2")).correct
    assert not check(task_sandbox, task, output_answer_reply("1.0")).correct  # typed: 1 != 1.0
    assert not check(task_sandbox, task, output_answer_reply("'1'")).correct
    typed = tasks["typed"]
    assert check(task_sandbox, typed, output_answer_reply("[6, 6.0, (6,)]")).correct
    assert not check(task_sandbox, typed, output_answer_reply("[6, 6.0, [6]]")).correct
    hostile = check(task_sandbox, task, output_answer_reply("__import__('os').getpid() and 1"))
    assert not hostile.correct and hostile.format_error is FormatError.BAD_LITERAL


def test_abduction(task_sandbox: Sandbox, tasks: dict[str, Task]) -> None:
    task = tasks["abduction"]  # f(10) == 1
    assert check(task_sandbox, task, input_answer_reply("10")).correct
    assert check(task_sandbox, task, input_answer_reply("4")).correct  # any input giving the output counts
    assert check(task_sandbox, task, input_answer_reply("k=5, x=6")).correct  # keyword arguments
    assert check(task_sandbox, task, input_answer_reply("7, k=2")).correct
    wrong = check(task_sandbox, task, input_answer_reply("3"))
    assert not wrong.correct and wrong.well_formatted and wrong.status == "ok"
    crash = check(task_sandbox, task, input_answer_reply("'a'"))
    assert not crash.correct and crash.status == "error" and "TypeError" in crash.detail


def test_abduction_injection_is_a_format_error(task_sandbox: Sandbox, tasks: dict[str, Task]) -> None:
    for injection in ["0) or (1", "0) == 0 or f(1", "1)\nimport os\nf(1"]:
        verdict = check(task_sandbox, tasks["abduction"], input_answer_reply(injection))
        assert not verdict.correct and verdict.format_error is FormatError.BAD_INPUT, injection


def test_induction(task_sandbox: Sandbox, tasks: dict[str, Task]) -> None:
    task = tasks["induction"]
    assert task.n_shown == 5 and len(task.inputs) == 10
    right = "def f(s, n=1):\n    n %= max(len(s), 1)\n    return s[n:] + s[:n]"
    assert check(task_sandbox, task, program_answer_reply(right)).correct
    almost = "def f(s, n=1):\n    return s[n:]"
    assert not check(task_sandbox, task, program_answer_reply(almost)).correct
    # Memorizing the shown pairs does not pass the held-out ones.
    table = {i: o for i, o in zip(task.inputs[: task.n_shown], task.outputs[: task.n_shown])}
    memorized = f"SHOWN = {table!r}\ndef f(*args, **kwargs):\n    return 'abcd'"
    assert not check(task_sandbox, task, program_answer_reply(memorized)).correct
    assert check(task_sandbox, task, program_answer_reply("def f(:")).format_error is FormatError.SYNTAX_ERROR
    assert (
        check(task_sandbox, task, program_answer_reply("def g(s):\n    return s")).format_error
        is FormatError.NO_F
    )


def test_induction_always_equal_object_fails(task_sandbox: Sandbox, tasks: dict[str, Task]) -> None:
    cheat = (
        "class Anything(str):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    __hash__ = str.__hash__\n"
        "def f(*args, **kwargs):\n    return Anything()"
    )
    verdict = check(task_sandbox, tasks["induction"], program_answer_reply(cheat))
    assert not verdict.correct and verdict.status == "ok" and "opaque" in verdict.detail


def test_induction_answer_program_is_contained(task_sandbox: Sandbox, tasks: dict[str, Task]) -> None:
    for program in [
        "import os\ndef f(*a, **k):\n    os._exit(0)",
        "def f(*a, **k):\n    while True:\n        pass",
        "import sys\ndef f(*a, **k):\n    sys.modules['builtins'].len = lambda x: 0\n    return 'x'",
    ]:
        verdict = check_replies(
            task_sandbox, [(tasks["induction"], program_answer_reply(program))], CheckConfig(timeout_s=0.5)
        )[0]
        assert not verdict.correct, program


def test_batched_checking_is_one_call_and_merges_duplicates(counting, tasks: dict[str, Task]) -> None:  # noqa: ANN001
    rollouts = [
        (tasks["deduction"], output_answer_reply("1")),
        (tasks["deduction"], "no answer tag"),
        *[(tasks["abduction"], input_answer_reply(x)) for x in ["4", "4", "4", "3", "0) or (1"]],
        *[(tasks["induction"], program_answer_reply(INDUCTION_PROGRAM)) for _ in range(4)],
    ]
    verdicts = check_replies(counting, rollouts)  # type: ignore[arg-type]
    assert counting.calls == 1
    assert counting.jobs == 3  # abduction '4' and '3', one induction program; deduction needs no run
    assert [v.correct for v in verdicts] == [
        True,
        False,
        True,
        True,
        True,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    assert verdicts[1].format_error is FormatError.NO_ANSWER_TAG
    assert verdicts[6].format_error is FormatError.BAD_INPUT


def test_check_answers_takes_parsed_answers(task_sandbox: Sandbox, tasks: dict[str, Task]) -> None:
    abduction = get_task_type("abduction")
    answer = abduction.parse_answer(input_answer_reply("13"))
    (verdict,) = check_answers(task_sandbox, [(tasks["abduction"], answer)])
    assert verdict.correct
    with pytest.raises(ValueError, match="kind"):
        check_answers(task_sandbox, [(tasks["deduction"], answer)])  # type: ignore[list-item]
