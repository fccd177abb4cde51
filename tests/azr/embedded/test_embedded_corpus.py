"""The warm-up corpus: rendered with the trainer's prompts; every reply parses, every proposal
validates and every answer checks correct with the real ``azr.tasks`` machinery and sandbox."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from azr.embedded import replies
from azr.embedded.corpus import (
    ROLES,
    CorpusConfig,
    build_corpus,
    build_examples,
    ground,
    induction_task,
    io_task,
)
from azr.embedded.grammar import sample_programs
from azr.tasks import ParseError, candidate_from_reply, check_replies, get_task_type, validate
from azr.tasks.prompts import conversation


@pytest.fixture(scope="module")
def grounded(sandbox):
    return ground(sandbox, sample_programs(80, seed=11), seed=11, inputs_per_program=14)


def test_corpus_covers_all_roles_and_is_deterministic(sandbox) -> None:
    cfg = CorpusConfig(n_programs=30, simple_repeats=1)
    _, a = build_corpus(sandbox, cfg, seed=0)
    _, b = build_corpus(sandbox, cfg, seed=0)
    assert a == b
    counts = Counter(e.role for e in a)
    assert set(counts) == set(ROLES)
    assert counts["solve_deduction"] > counts["propose_deduction"]  # one-step repeats


def test_prompts_are_the_trainers_and_replies_continue_the_open_think(grounded) -> None:
    examples = build_examples(grounded[:20], CorpusConfig(bare_prompt_fraction=0.0, simple_repeats=0), seed=0)
    for e in examples:
        assert e.prompt.endswith("Assistant: <think>")
        assert not e.reply.lstrip().startswith("<think>")
        assert e.reply.rstrip().endswith("</answer>")
    g = grounded[0]
    [example] = [e for e in build_examples([g], CorpusConfig(bare_prompt_fraction=0.0), 0) if e.role == "solve_deduction"]
    rendered = {conversation(get_task_type("deduction").solve_prompt(io_task("deduction", g, r), "compact")) for r in g.runs}
    assert example.prompt in rendered
    assert example.prompt.startswith("A conversation between User and Assistant")


def test_bare_prompts_keep_the_full_reply(grounded) -> None:
    examples = build_examples(grounded[:10], CorpusConfig(bare_prompt_fraction=1.0, simple_repeats=0), seed=0)
    assert all(e.reply.startswith("<think>") and "Assistant:" not in e.prompt for e in examples)


def test_proposal_replies_parse_and_validate(sandbox, grounded) -> None:
    candidates = []
    for g in grounded:
        reply = replies.propose_program(g.program, g.runs[0].input)
        for kind in ("deduction", "abduction"):
            c = candidate_from_reply(kind, reply, [])
            assert not isinstance(c, ParseError), c
            candidates.append(c)
    outcomes = validate(sandbox, candidates)
    assert all(o.ok for o in outcomes), [(o.rejection, o.detail) for o in outcomes if not o.ok][:3]


def test_induction_proposals_validate_in_the_tiny_shape(sandbox, grounded, induction_shape) -> None:
    rng = random.Random(0)
    candidates = []
    for g in grounded:
        task = induction_task(g, 6, 3, rng)
        if task is None:
            continue
        c = candidate_from_reply("induction", replies.propose_inputs(g.program, task.inputs), [task])
        assert not isinstance(c, ParseError), c
        candidates.append(c)
    assert len(candidates) > 40
    outcomes = validate(sandbox, candidates)
    assert all(o.ok for o in outcomes), [(o.rejection, o.detail) for o in outcomes if not o.ok][:3]


def test_solver_replies_parse_and_are_correct(sandbox, grounded) -> None:
    rng = random.Random(1)
    items = []
    for g in grounded:
        run = g.runs[-1]
        items.append((io_task("deduction", g, run), replies.solve_output(g.program, run.input, run.trace, run.output)))
        items.append((io_task("abduction", g, run), replies.solve_input(g.program, run.input, run.output)))
        task = induction_task(g, 10, 5, rng)
        if task is not None:
            items.append((task, replies.solve_program(g.program)))
    verdicts = check_replies(sandbox, items)
    assert all(v.correct for v in verdicts), [(t.type, v.detail) for (t, _), v in zip(items, verdicts) if not v.correct]
    # and a wrong answer is caught, so the check above can fail
    g = grounded[0]
    wrong = replies.solve_output(g.program, g.runs[0].input, (), "'definitely not this'")
    assert not check_replies(sandbox, [(io_task("deduction", g, g.runs[0]), wrong)])[0].correct


def test_induction_message_does_not_leak_code(grounded) -> None:
    for g in grounded:
        message = replies.message_for(g.program)
        assert "def f" not in message and g.program.source not in message
