"""Validation of proposed tasks through the real sandbox: every rejection reason, and what passes."""

from __future__ import annotations

import dataclasses

import pytest

from azr.tasks import Rejection, Task, ValidationConfig, validate
from azr.tasks.analysis import banned_imports, banned_names, complexity, parse_program
from sandbox import Sandbox

DEFAULT = ValidationConfig()
FAST = ValidationConfig(timeout_s=0.5)
NO_DENY_LIST = ValidationConfig(banned_modules=frozenset(), banned_names=frozenset())
DOUBLE = "def f(a):\n    return a * 2"
TEN = [str(i) for i in range(10)]


def deduction(program: str, inp: str = "3") -> Task:
    return Task(type="deduction", program=program, inputs=[inp], outputs=[])


def induction(
    program: str = DOUBLE, inputs: list[str] | None = None, message: str = "doubles its input"
) -> Task:
    return Task(
        type="induction",
        program=program,
        inputs=list(TEN if inputs is None else inputs),
        outputs=[],
        message=message,
    )


# (reason, candidate, config): one real program per rejection reason.
REJECTIONS = [
    (Rejection.PROGRAM_TOO_LONG, deduction(DOUBLE + "\n" + "# pad\n" * 1000), DEFAULT),
    (Rejection.SYNTAX_ERROR, deduction("def f(a):\n    return (a"), DEFAULT),
    (Rejection.NO_F, deduction("def g(a):\n    return a"), DEFAULT),
    (Rejection.NO_F, deduction("f = lambda a: a"), DEFAULT),
    (Rejection.BANNED_IMPORT, deduction("import random\ndef f(a):\n    return random.random()"), DEFAULT),
    (Rejection.BANNED_IMPORT, deduction("import os.path\ndef f(a):\n    return a"), DEFAULT),
    (Rejection.BANNED_IMPORT, deduction("from os import path\ndef f(a):\n    return a"), DEFAULT),
    (Rejection.BANNED_IMPORT, deduction("def f(a):\n    import time\n    return time.time()"), DEFAULT),
    (Rejection.BANNED_IMPORT, deduction("from concurrent.futures import ThreadPoolExecutor\ndef f(a):\n    return a"), DEFAULT),
    (Rejection.BANNED_IMPORT, deduction("from . import x\ndef f(a):\n    return a"), DEFAULT),
    (Rejection.BANNED_IMPORT, deduction("import math\ndef f(a):\n    return a"), ValidationConfig(allowed_modules=frozenset({"re"}))),
    (Rejection.BANNED_CALL, deduction("def f(a):\n    return __import__('random').random()"), DEFAULT),
    (Rejection.BANNED_CALL, deduction("def f(a):\n    return eval('a + 1')"), DEFAULT),
    (Rejection.BANNED_CALL, deduction("def f(a):\n    exec('b = 1')\n    return a"), DEFAULT),
    (Rejection.BANNED_CALL, deduction("def f(a):\n    return open('/etc/passwd').read()"), DEFAULT),
    (Rejection.BANNED_CALL, deduction("def f(a):\n    return len(globals())"), DEFAULT),
    (Rejection.BANNED_CALL, deduction("def f(a):\n    return len(().__class__.__bases__[0].__subclasses__())"), DEFAULT),
    (Rejection.BANNED_CALL, deduction("def f(a):\n    return len(getattr(f, '__globals__'))"), DEFAULT),
    (Rejection.BAD_INPUT, deduction(DOUBLE, "0) or (1"), DEFAULT),
    (Rejection.BAD_INPUT, deduction(DOUBLE, "x"), DEFAULT),
    (Rejection.BAD_INPUT, deduction(DOUBLE, "'" + "a" * 2000 + "'"), DEFAULT),
    (Rejection.WRONG_INPUT_COUNT, Task(type="deduction", program=DOUBLE, inputs=["1", "2"], outputs=[]), DEFAULT),
    (Rejection.WRONG_INPUT_COUNT, induction(inputs=TEN[:9]), DEFAULT),
    (Rejection.DUPLICATE_INPUTS, induction(inputs=[*TEN[:9], " 0 "]), DEFAULT),
    (Rejection.BAD_MESSAGE, induction(message="  "), DEFAULT),
    (Rejection.BAD_MESSAGE, induction(message=f"the answer is\n{DOUBLE}"), DEFAULT),
    (Rejection.BAD_MESSAGE, induction(message="m" * 2000), DEFAULT),
    (Rejection.TIMEOUT, deduction("def f(a):\n    while True:\n        a += 1"), FAST),
    (Rejection.MEMORY, deduction("def f(a):\n    return len([0] * (10 ** 9))"), DEFAULT),
    (Rejection.KILLED, deduction("import ctypes\ndef f(a):\n    return ctypes.string_at(0)"), NO_DENY_LIST),
    (Rejection.RUNTIME_ERROR, deduction("def f(a):\n    return a / 0"), DEFAULT),
    (Rejection.RUNTIME_ERROR, deduction("def f(a):\n    raise Exception('no error in this name')"), DEFAULT),
    (Rejection.RUNTIME_ERROR, deduction("def f(a):\n    return a", "1, 2"), DEFAULT),
    (Rejection.NONDETERMINISTIC, deduction("C = [0]\ndef f(a):\n    C[0] += 1\n    return a + C[0]"), DEFAULT),
    (Rejection.NONDETERMINISTIC, induction("seen = []\ndef f(a):\n    seen.append(a)\n    return len(seen)"), DEFAULT),
    (Rejection.OUTPUT_NOT_PLAIN, deduction("class A:\n    pass\ndef f(a):\n    return A()"), DEFAULT),
    (Rejection.OUTPUT_NOT_PLAIN, deduction("def f(a):\n    return (x for x in range(a))"), DEFAULT),
    (Rejection.OUTPUT_NOT_PLAIN, deduction("class Eq:\n    def __eq__(s, o):\n        return True\ndef f(a):\n    return [Eq()]"), DEFAULT),
    (Rejection.OUTPUT_TOO_LARGE, deduction("def f(a):\n    return 'x' * a", "5000"), DEFAULT),
    (Rejection.OUTPUT_TOO_LARGE, deduction("def f(a):\n    return 'x' * a", "10000000"), DEFAULT),
    (Rejection.RETURNS_NONE, deduction("def f(a):\n    a.append(1)", "[]"), DEFAULT),
    (Rejection.CONSTANT_OUTPUTS, induction("def f(a):\n    return 7"), DEFAULT),
]  # fmt: skip

# The determinism check itself (deny list off, so `import random`/`time` reach the sandbox).
NONDETERMINISTIC = [
    deduction("import random\ndef f(a):\n    return random.randint(0, 10**9) + a"),
    deduction("import time\ndef f(a):\n    return time.time() + a"),
    deduction("import time\ndef f(a):\n    return time.perf_counter_ns() % 1000 + a"),
    deduction("def f(a):\n    return id(object()) % 100003 + a"),
    deduction("class A:\n    def __init__(s, v):\n        s.v = v\ndef f(n):\n    return [o.v for o in {A(i) for i in range(n)}]", "20"),
    deduction("import random\ndef f(a):\n    return 1 / 0 if random.random() < 0.5 else a", "3"),
]  # fmt: skip


def test_every_rejection_reason_is_exercised() -> None:
    assert {reason for reason, _c, _cfg in REJECTIONS} == set(Rejection)


@pytest.mark.parametrize(
    ("reason", "candidate", "config"),
    REJECTIONS,
    ids=[f"{r.value}-{i}" for i, (r, _c, _k) in enumerate(REJECTIONS)],
)
def test_rejections(
    task_sandbox: Sandbox, reason: Rejection, candidate: Task, config: ValidationConfig
) -> None:
    (outcome,) = validate(task_sandbox, [candidate], config)
    assert outcome.rejection is reason, (outcome.rejection, outcome.detail)
    assert not outcome.ok and outcome.detail
    assert outcome.task.validation.rejection == reason.value
    assert outcome.task.validation.checks  # the trace says which checks ran
    assert outcome.task.outputs == []
    assert candidate.validation.checks == []  # the caller's candidate is not mutated


@pytest.mark.parametrize(
    "candidate", NONDETERMINISTIC, ids=["random", "time", "clock", "id", "object-set-order", "random-error"]
)
def test_determinism_check_rejects_with_deny_list_disabled(task_sandbox: Sandbox, candidate: Task) -> None:
    (outcome,) = validate(task_sandbox, [candidate], NO_DENY_LIST)
    assert outcome.rejection is Rejection.NONDETERMINISTIC, (outcome.rejection, outcome.detail)
    (unchecked,) = validate(
        task_sandbox, [candidate], dataclasses.replace(NO_DENY_LIST, check_determinism=False)
    )
    assert unchecked.rejection in (None, Rejection.RUNTIME_ERROR)  # it is the determinism check that rejects


def test_valid_deduction_task_is_filled_in(task_sandbox: Sandbox) -> None:
    program = "import math\nfrom collections import Counter\n\ndef f(s, k=1):\n    c = Counter(s)\n    return sorted(c.items())[:k], math.gcd(len(s), 4)"
    candidate = deduction(program, "  'abca',k = 2 ")
    (outcome,) = validate(task_sandbox, [candidate])
    assert outcome.ok, outcome.detail
    task = outcome.task
    assert task.inputs == ["'abca', k=2"]  # canonical argument list
    assert task.outputs == ["([('a', 2), ('b', 1)], 4)"]  # canonical Value.text
    assert task.imports == ["import math", "from collections import Counter"]
    assert task.complexity.ast_nodes > 20 and task.complexity.ast_depth > 3 and task.complexity.lines == 5
    trace = task.validation
    assert trace.rejection is None
    assert trace.checks == [
        "program_size",
        "syntax",
        "defines_f",
        "imports",
        "escape_hatches",
        "inputs",
        "execution",
        "outputs",
        "determinism",
    ]
    assert {"static", "run_seed_a", "run_seed_b", "total"} <= set(trace.timings_s)


def test_allowed_shapes_pass(task_sandbox: Sandbox) -> None:
    ok = [
        deduction("def f(input):\n    return input[::-1]", "'abc'"),  # a parameter shadowing a builtin
        deduction("class Node:\n    def __init__(self, v):\n        self.v = v\n\ndef f(xs):\n    return [Node(x).v for x in xs]", "[3, 1]"),
        deduction("def f(a):\n    def helper(b):\n        return b + 1\n    return helper(a)"),
        deduction("def f(s):\n    return sorted(set(s))", "'banana'"),  # string sets: hash seed is pinned
        deduction("def f(a):\n    return float('nan')"),
        deduction("import functools\n@functools.lru_cache(None)\ndef f(n):\n    return n if n < 2 else f(n - 1) + f(n - 2)", "30"),
        Task(type="abduction", program=DOUBLE, inputs=["a=4"], outputs=[]),
        induction(),
    ]  # fmt: skip
    outcomes = validate(task_sandbox, ok)
    assert [o.rejection for o in outcomes] == [None] * len(ok), [o.detail for o in outcomes]
    assert outcomes[-2].task.outputs == ["8"]
    assert outcomes[-1].task.outputs == [str(2 * i) for i in range(10)] and outcomes[-1].task.n_shown == 5


def test_a_batch_is_one_sandbox_call(counting) -> None:  # noqa: ANN001
    batch = [deduction(f"def f(a):\n    return a + {i}") for i in range(12)]
    batch += [deduction("import os\ndef f(a):\n    return a"), induction()]
    outcomes = validate(counting, batch)  # type: ignore[arg-type]
    assert counting.calls == 1
    assert counting.jobs == 2 * 13  # two seeds per candidate that got past the static checks
    assert [o.task.outputs for o in outcomes[:12]] == [[str(3 + i)] for i in range(12)]
    assert outcomes[12].rejection is Rejection.BANNED_IMPORT and outcomes[13].ok


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="seeds"):
        ValidationConfig(seeds=(1, 1))
    with pytest.raises(ValueError, match="timeout_s"):
        ValidationConfig(timeout_s=0)


def test_static_analysis_helpers() -> None:
    tree = parse_program(
        "import os.path as p, json\nfrom xml.etree import ElementTree\ndef f(a):\n    return a"
    )
    assert not isinstance(tree, str)
    assert [str(x) for x in banned_imports(tree, {"path"})] == ["os.path (line 1)"]
    assert [x.name for x in banned_imports(tree, set(), allowed={"json"})] == ["os.path", "xml.etree"]
    shadowed = parse_program("def f(input, open=1):\n    compile = 2\n    return input, open, compile")
    assert not isinstance(shadowed, str) and banned_names(shadowed, {"input", "open", "compile"}) == []
    assert complexity(parse_program("x = 1"), "x = 1").ast_nodes == 4  # type: ignore[arg-type]
