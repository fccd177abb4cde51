"""The held-out task set: fixed, valid, and disjoint from the training corpus."""

from __future__ import annotations

import json

from azr.embedded.corpus import CorpusConfig, build_corpus
from azr.embedded.grammar import sample_programs, split_of
from azr.embedded.heldout import heldout_tasks, write_jsonl
from azr.tasks import Task, ValidationConfig, validate
from azr.tasks.prompts import fence
from azr.tasks.record import TASK_TYPES


def test_heldout_is_fixed_valid_and_disjoint_from_training(sandbox, tmp_path) -> None:
    a = heldout_tasks(sandbox, n_per_type=12)
    b = heldout_tasks(sandbox, n_per_type=12)
    assert {k: [t.to_dict() for t in v] for k, v in a.items()} == {k: [t.to_dict() for t in v] for k, v in b.items()}
    assert {k: len(v) for k, v in a.items()} == dict.fromkeys(TASK_TYPES, 12)
    programs = {t.program for v in a.values() for t in v}
    assert all(split_of(p) == "heldout" for p in programs)
    grounded, corpus = build_corpus(sandbox, CorpusConfig(n_programs=200, simple_repeats=1), seed=0)
    assert not programs & {g.program.source for g in grounded}
    fenced = {fence("python", p) for p in programs}
    assert not any(f in e.prompt or f in e.reply for e in corpus for f in fenced)

    # The stored outputs are what the trainer's validation computes.
    candidates = [Task.from_dict({**t.to_dict(), "outputs": []}) for t in a["deduction"] + a["abduction"]]
    outcomes = validate(sandbox, candidates, ValidationConfig())
    assert [o.task.outputs for o in outcomes] == [t.outputs for t in a["deduction"] + a["abduction"]]
    for t in a["induction"]:
        assert len(t.inputs) == 10 and t.n_shown == 5 and len(set(t.outputs)) > 1 and t.message

    path = tmp_path / "heldout.jsonl"
    write_jsonl(a, path)
    rows = [Task.from_dict(json.loads(line)) for line in path.read_text().splitlines()]
    assert [r.to_dict() for r in rows] == [t.to_dict() for k in TASK_TYPES for t in a[k]]


def test_simple_heldout_uses_one_step_programs(sandbox) -> None:
    simple = heldout_tasks(sandbox, n_per_type=10, max_transforms=0, types=("deduction",))
    assert set(simple) == {"deduction"}
    one_step = {p.source for p in sample_programs(10_000, 0, "heldout", max_transforms=0, allow_fewer=True)}
    assert all(t.program in one_step for t in simple["deduction"])
