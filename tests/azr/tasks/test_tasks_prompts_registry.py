"""Prompts, the task-type registry, and the full propose -> validate -> solve -> check round trip."""

from __future__ import annotations

import dataclasses

import pytest

from azr.tasks import (
    ParseError,
    Task,
    candidate_from_reply,
    check_replies,
    get_task_type,
    register_task_type,
    task_type_names,
    validate,
)
from azr.tasks.absolute_zero import induction_type
from azr.tasks.prompts import (
    STYLES,
    conversation,
    induction_proposal_reply,
    input_answer_reply,
    output_answer_reply,
    program_answer_reply,
    program_proposal_reply,
)
from sandbox import Sandbox

REF_A = Task(
    type="deduction",
    program="def f(s):\n    return s[::-1]",
    inputs=["'abc'"],
    outputs=["'cba'"],
    id=3,
)
REF_B = Task(
    type="deduction",
    program="def f(xs, k):\n    return sorted(xs)[:k]",
    inputs=["[3, 1, 2], 2"],
    outputs=["[1, 2]"],
    id=7,
)
INDUCTION_TASK = Task(
    type="induction",
    program=REF_A.program,
    inputs=[repr(c * i) for i, c in enumerate("abcdefghij", 1)],
    outputs=[repr(c * i) for i, c in enumerate("abcdefghij", 1)],
    message="reverses a string",
    n_shown=5,
)


def test_registry_has_the_three_absolute_zero_types() -> None:
    assert task_type_names()[:3] == ["deduction", "abduction", "induction"]
    with pytest.raises(KeyError, match="unknown task type 'code_e'"):
        get_task_type("code_e")
    with pytest.raises(ValueError, match="already registered"):
        register_task_type(get_task_type("deduction"))


def test_registering_a_variant() -> None:
    original = get_task_type("induction")
    try:
        register_task_type(induction_type(n_inputs=4, n_shown=2), replace=True)
        variant = get_task_type("induction")
        assert "4 different inputs" in variant.propose_prompt([REF_A], "compact")
        reply = induction_proposal_reply(["'a'", "'b'", "'c'", "'d'"], "reverses")
        candidate = candidate_from_reply("induction", reply, [REF_A], step=2)
        assert isinstance(candidate, Task) and len(candidate.inputs) == 4 and candidate.n_shown == 2
        with pytest.raises(ValueError, match="n_shown"):
            induction_type(n_inputs=3, n_shown=3)
    finally:
        register_task_type(original, replace=True)


@pytest.mark.parametrize("style", STYLES)
def test_prompts_show_the_right_things(style: str) -> None:
    deduction, abduction, induction = (get_task_type(n) for n in ("deduction", "abduction", "induction"))
    for kind in (deduction, abduction):
        prompt = kind.propose_prompt([REF_A, REF_B], style)
        assert REF_A.program in prompt and REF_B.program in prompt and "'cba'" in prompt
        assert "```python" in prompt and "```input" in prompt and "<answer>" in prompt
    assert "predict the output" in deduction.propose_prompt([], style)
    assert "find an input" in abduction.propose_prompt([], style)

    solve = deduction.solve_prompt(REF_B, style)
    assert (
        REF_B.program in solve and "[3, 1, 2], 2" in solve and "[1, 2]" not in solve and "```output" in solve
    )
    solve = abduction.solve_prompt(REF_B, style)
    assert REF_B.program in solve and "[1, 2]" in solve and "[3, 1, 2], 2" not in solve

    propose = induction.propose_prompt([REF_A], style)
    assert REF_A.program in propose and "10" in propose and "```message" in propose
    solve = induction.solve_prompt(INDUCTION_TASK, style)
    assert REF_A.program not in solve and "reverses a string" in solve
    assert "'eeeee'" in solve and "'ffffff'" not in solve  # shown pairs only; held-out ones stay hidden
    with pytest.raises(ValueError, match="needs one reference"):
        induction.propose_prompt([], style)


def test_compact_prompts_fit_a_small_context() -> None:
    """K=2 references with typical programs stay far below a 1k-token context (~4 chars/token)."""
    for name in ("deduction", "abduction"):
        assert len(get_task_type(name).propose_prompt([REF_A, REF_B], "compact")) < 1600
    assert len(get_task_type("induction").propose_prompt([REF_A], "compact")) < 1400
    assert len(get_task_type("induction").solve_prompt(INDUCTION_TASK, "compact")) < 900
    paper = get_task_type("induction").propose_prompt([REF_A], "paper")
    assert len(paper) > len(get_task_type("induction").propose_prompt([REF_A], "compact")) + 200


def test_unknown_style_is_an_error() -> None:
    with pytest.raises(ValueError, match="style"):
        get_task_type("deduction").propose_prompt([REF_A], "verbose")


def test_conversation_wrapper_ends_in_open_think() -> None:
    text = conversation("do it")
    assert text.endswith("Assistant: <think>") and "User: do it" in text


def test_candidate_from_reply() -> None:
    reply = program_proposal_reply("def f(a):\n    return a + 1", " 41 ")
    candidate = candidate_from_reply("deduction", reply, [REF_A, REF_B], step=9)
    assert isinstance(candidate, Task)
    assert (candidate.inputs, candidate.outputs, candidate.step, candidate.references) == (
        ["41"],
        [],
        9,
        [3, 7],
    )
    assert candidate.source == "proposer"
    error = candidate_from_reply("abduction", "I refuse", [REF_A], step=9)
    assert isinstance(error, ParseError)
    induction = candidate_from_reply(
        "induction", induction_proposal_reply(INDUCTION_TASK.inputs, "hint"), [REF_B], 1
    )
    assert isinstance(induction, Task) and induction.program == REF_B.program and induction.references == [7]


def test_round_trip_through_the_sandbox(task_sandbox: Sandbox) -> None:
    """Gold replies rendered by the prompt module parse, validate and check as correct."""
    program = "def f(xs, k=2):\n    return [x * k for x in xs if x % 2]"
    source = Task(type="abduction", program=program, inputs=["[1]"], outputs=["[2]"])  # the induction program
    proposals = [
        candidate_from_reply("deduction", program_proposal_reply(program, "[1, 2, 3], k=3"), [REF_A], 0),
        candidate_from_reply("abduction", program_proposal_reply(program, "[5, 6]"), [REF_A], 0),
        candidate_from_reply(
            "induction",
            induction_proposal_reply([f"[{i}, {i + 1}, 7]" for i in range(10)], "odd ones scaled"),
            [source],
            0,
        ),
    ]
    assert all(isinstance(p, Task) for p in proposals)
    outcomes = validate(task_sandbox, proposals)  # type: ignore[arg-type]
    assert all(o.ok for o in outcomes), [o.detail for o in outcomes]
    deduction, abduction, induction = (o.task for o in outcomes)
    assert deduction.outputs == ["[3, 9]"] and abduction.outputs == ["[10]"]
    for task in (deduction, abduction, induction):
        prompt = get_task_type(task.type).solve_prompt(task, "compact")
        assert task.program in prompt or task.type == "induction"
    replies = [
        (deduction, output_answer_reply(deduction.outputs[0], think="multiply odd items")),
        (abduction, input_answer_reply("[5]", think="any list with one odd 5")),
        (induction, program_answer_reply("def f(xs):\n    return [2 * x for x in xs if x % 2 == 1]")),
        (dataclasses.replace(induction), program_answer_reply("def f(xs):\n    return xs")),
    ]
    assert [v.correct for v in check_replies(task_sandbox, replies)] == [True, True, True, False]
