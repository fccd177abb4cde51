"""The program grammar: deterministic, split-disjoint, and every program valid in the real sandbox."""

from __future__ import annotations

import random

from azr.embedded.corpus import ground, io_task
from azr.embedded.grammar import sample_input, sample_programs, split_of
from azr.tasks import ParseError, ValidationConfig, parse_arguments, validate
from azr.tasks.analysis import import_statements, parse_program


def test_programs_are_deterministic_in_the_seed() -> None:
    a = [p.source for p in sample_programs(50, seed=3)]
    b = [p.source for p in sample_programs(50, seed=3)]
    c = [p.source for p in sample_programs(50, seed=4)]
    assert a == b
    assert a != c
    assert len(set(a)) == 50


def test_splits_are_disjoint_and_stable() -> None:
    train = {p.source for p in sample_programs(400, seed=0, split="train")}
    heldout = {p.source for p in sample_programs(60, seed=0, split="heldout")}
    assert not train & heldout
    assert all(split_of(s) == "train" for s in train)
    assert all(split_of(s) == "heldout" for s in heldout)


def test_one_step_programs_are_few_but_many_enough() -> None:
    one_step = sample_programs(10_000, seed=0, split="train", max_transforms=0, allow_fewer=True)
    assert 50 < len(one_step) < 1000
    assert all(p.n_steps == 1 for p in one_step)


def test_programs_parse_import_nothing_and_define_f() -> None:
    for p in sample_programs(200, seed=1):
        tree = parse_program(p.source)
        assert not isinstance(tree, str), tree
        assert p.source.startswith(f"def f({p.params}):")
        assert not import_statements(tree)
        assert len(p.trace_sources) == p.n_steps - 1


def test_programs_pass_the_real_validator(sandbox) -> None:
    """Grounded runs of grammar programs are accepted by the trainer's validation, with the same
    outputs it computes (two sandbox runs with different seeds: deterministic)."""
    programs = sample_programs(120, seed=5)
    grounded = ground(sandbox, programs, seed=5, inputs_per_program=4)
    assert len(grounded) >= 110  # nearly every program works on some input
    candidates = [io_task("deduction", g, g.runs[0]) for g in grounded]
    expected = [c.outputs for c in candidates]
    for c in candidates:
        c.outputs = []
    outcomes = validate(sandbox, candidates, ValidationConfig())
    bad = [(o.task.program, o.rejection, o.detail) for o in outcomes if not o.ok]
    assert not bad, bad[:3]
    assert [o.task.outputs for o in outcomes] == expected


def test_inputs_match_the_signature() -> None:
    rng = random.Random(0)
    types = {"str": str, "list": list, "int": int}
    for p in sample_programs(100, seed=2):
        args = parse_arguments(sample_input(rng, p))
        assert not isinstance(args, ParseError), args
        assert len(args.args) == (2 if p.has_k else 1)
        assert type(args.args[0].to_python()) is types[p.arg_type]
