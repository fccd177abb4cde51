"""Task filters shared by the store, the CLI and export: one dataclass, one SQL translation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks to select; every field left at its default selects everything.

    A solve-rate bound selects only tasks that have been attempted (a rate needs attempts).
    ``text`` is a case-insensitive substring of the program, message, inputs or outputs.
    """

    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    step_min: int | None = None
    step_max: int | None = None
    solve_min: float | None = None
    solve_max: float | None = None
    text: str | None = None

    def where(self) -> tuple[str, list[object]]:
        """An SQL condition over the ``tasks`` table and its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        if self.types:
            clauses.append(f"type IN ({', '.join('?' * len(self.types))})")
            params += self.types
        if self.sources:
            clauses.append(f"source IN ({', '.join('?' * len(self.sources))})")
            params += self.sources
        if self.step_min is not None:
            clauses.append("step >= ?")
            params.append(self.step_min)
        if self.step_max is not None:
            clauses.append("step <= ?")
            params.append(self.step_max)
        if self.solve_min is not None or self.solve_max is not None:
            clauses.append("attempts > 0")
        if self.solve_min is not None:
            clauses.append("CAST(successes AS REAL) / attempts >= ?")
            params.append(self.solve_min)
        if self.solve_max is not None:
            clauses.append("CAST(successes AS REAL) / attempts <= ?")
            params.append(self.solve_max)
        if self.text:
            pattern = "%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            columns = ("program", "message", "inputs", "outputs")
            clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
            params += [pattern] * len(columns)
        return (" AND ".join(clauses) if clauses else "1"), params
