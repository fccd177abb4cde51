"""The task record: what the buffer stores and every other part passes around."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TASK_TYPES = ("deduction", "abduction", "induction")
SOURCES = ("seed", "import", "proposer")


@dataclass
class ValidationTrace:
    """How a task was validated: which checks ran, how long each took, and the outcome."""

    checks: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    rejection: str | None = None  # a reason code when rejected, None when valid
    detail: str = ""


@dataclass
class Complexity:
    ast_nodes: int = 0
    ast_depth: int = 0
    lines: int = 0


@dataclass
class Task:
    """One verified code-reasoning task.

    ``inputs`` are canonical argument-list texts (``"'abc', 3"``, rebuilt by validation from the
    parsed literals, see :mod:`azr.tasks.arguments`), ``outputs`` are canonical literal texts
    (``sandbox.Value.text``) of what ``f`` returned on each input.
    Deduction/abduction tasks have one input/output pair; induction tasks have several, of which
    the first ``n_shown`` are shown to the solver and the rest are held out.
    """

    type: str
    program: str
    inputs: list[str]
    outputs: list[str]
    message: str = ""
    imports: list[str] = field(default_factory=list)
    n_shown: int = 1
    source: str = "proposer"
    step: int = 0
    references: list[int] = field(default_factory=list)  # buffer ids shown to the proposer
    validation: ValidationTrace = field(default_factory=ValidationTrace)
    complexity: Complexity = field(default_factory=Complexity)
    id: int | None = None  # assigned by the buffer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        d = dict(d)
        d["validation"] = ValidationTrace(**d.get("validation", {}))
        d["complexity"] = Complexity(**d.get("complexity", {}))
        return cls(**d)


@dataclass
class SolveRecord:
    """Solve history of a task at one training step."""

    task_id: int
    step: int
    attempts: int
    successes: int
