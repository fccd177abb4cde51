"""Rich renderings of buffer contents for people (the CLI's ``--json`` is for scripts)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from azr.buffer.importer import ImportReport
from azr.buffer.store import StoredTask
from azr.tasks.record import SolveRecord


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _headline(program: str) -> str:
    """The most telling line of a program: the ``def f`` line, else the first non-import line."""
    lines = [ln.strip() for ln in program.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("def f("):
            return line
    rest = [ln for ln in lines if not ln.startswith(("import ", "from "))]
    return rest[0] if rest else (lines[0] if lines else "")


def _rate(stored: StoredTask) -> str:
    if not stored.attempts:
        return "-"
    return f"{stored.successes}/{stored.attempts} ({stored.solve_rate:.0%})"


def task_table(rows: list[StoredTask], title: str, width: int = 100) -> Table:
    """One row per task; program and input are cut (with …) to fit ``width`` columns."""
    narrow = [
        (str(r.task.id), r.task.type, r.task.source, str(r.task.step), _rate(r), str(r.task.complexity.ast_nodes))
        for r in rows
    ]
    names = ("id", "type", "source", "step", "solved", "nodes")
    widths = [max([len(name), *(len(c[i]) for c in narrow)]) for i, name in enumerate(names)]
    room = max(20, width - sum(widths) - 3 * (len(names) + 2) - 1)
    program_w, input_w = room * 3 // 5, room - room * 3 // 5
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(names):
        table.add_column(name, no_wrap=True, min_width=widths[i], justify="left" if i in (1, 2) else "right")
    table.add_column("program", no_wrap=True)
    table.add_column("input", no_wrap=True)
    for r, cells in zip(rows, narrow):
        more = " …" if len(r.task.inputs) > 1 else ""
        table.add_row(*cells, _short(_headline(r.task.program), program_w),
                      _short(r.task.inputs[0], input_w - len(more)) + more)  # fmt: skip
    return table


def task_view(stored: StoredTask, history: list[SolveRecord]) -> Group:
    t = stored.task
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("type", t.type)
    facts.add_row("source", f"{t.source} (step {t.step})")
    facts.add_row("solved", _rate(stored))
    facts.add_row("complexity", f"{t.complexity.ast_nodes} AST nodes, depth {t.complexity.ast_depth}, {t.complexity.lines} lines")
    facts.add_row("references", ", ".join(map(str, t.references)) or "-")
    facts.add_row("imports", "; ".join(t.imports) or "-")
    if t.message:
        facts.add_row("message", t.message)
    v = t.validation
    facts.add_row("validation", ", ".join(v.checks) or "-")
    if v.timings_s:
        facts.add_row("timings", ", ".join(f"{k} {s * 1000:.1f} ms" for k, s in v.timings_s.items()))
    pairs = Table(title="inputs → outputs", title_justify="left")
    pairs.add_column("#", justify="right")
    pairs.add_column("input", overflow="fold")
    pairs.add_column("output", overflow="fold")
    pairs.add_column("shown")
    for i, (inp, out) in enumerate(zip(t.inputs, t.outputs)):
        pairs.add_row(str(i + 1), inp, out, "yes" if i < t.n_shown else "held out")
    parts: list[Any] = [
        Panel(Syntax(t.program, "python", line_numbers=False), title=f"task {t.id}", title_align="left"),
        facts,
        pairs,
    ]
    if history:
        solves = Table(title="solve history", title_justify="left")
        for name in ("step", "attempts", "successes"):
            solves.add_column(name, justify="right")
        for rec in history:
            solves.add_row(str(rec.step), str(rec.attempts), str(rec.successes))
        parts.append(solves)
    return Group(*parts)


def _counts(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("reason")
    table.add_column("count", justify="right")
    for key, n in counts.items():
        table.add_row(str(key), str(n))
    return table


def print_stats(console: Console, s: dict[str, Any], growth_rows: int = 20) -> None:
    console.print(f"[bold]{s['path']}[/bold]: {s['tasks']} tasks")
    kinds = Table(title="tasks by type and source", title_justify="left")
    kinds.add_column("type")
    sources = list(s["by_source"])
    for src in sources:
        kinds.add_column(src, justify="right")
    kinds.add_column("total", justify="right")
    for type_, per in s["by_type_source"].items():
        kinds.add_row(type_, *(str(per[src]) for src in sources), str(s["by_type"][type_]))
    kinds.add_row("total", *(str(s["by_source"][src]) for src in sources), str(s["tasks"]), style="bold")
    console.print(kinds)
    rej = s["rejections"]
    if rej["by_reason"]:
        console.print(_counts("rejections by reason (all steps and sources)", rej["by_reason"]))
    console.print(
        f"duplicate rate {s['duplicate_rate']:.1%} ({s['duplicates']} duplicates), "
        f"rejection rate {s['rejection_rate']:.1%} ({rej['total']} rejected)"
    )
    solve = Table(title="solve rate", title_justify="left")
    solve.add_column("type")
    for name in ("attempted", "never", "always", "mean", "histogram 0 → 1 (10 bins)"):
        solve.add_column(name, justify="right" if name != "histogram 0 → 1 (10 bins)" else "left")
    for key, d in s["solve_rate"].items():
        hist = " ".join(str(b["count"]) for b in d["histogram"])
        mean = "-" if d["mean"] is None else f"{d['mean']:.2f}"
        solve.add_row(key, f"{d['attempted']}/{d['attempted'] + d['unattempted']}", str(d["never_solved"]),
                      str(d["always_solved"]), mean, hist)  # fmt: skip
    console.print(solve)
    comp = Table(title="complexity (mean / median / max)", title_justify="left")
    comp.add_column("type")
    for name in ("AST nodes", "AST depth", "lines"):
        comp.add_column(name, justify="right")
    for type_, d in s["complexity"].items():
        if d:
            comp.add_row(type_, *(f"{d[k]['mean']:.1f} / {d[k]['median']:.0f} / {d[k]['max']:.0f}"
                                  for k in ("ast_nodes", "ast_depth", "lines")))  # fmt: skip
    console.print(comp)
    growth = s["growth"]
    if growth:
        table = Table(title=f"growth per step (last {min(growth_rows, len(growth))} of {len(growth)} steps)",
                      title_justify="left")  # fmt: skip
        for name in ("step", "added", "ded.", "abd.", "ind.", "duplicates", "rejected", "total"):
            table.add_column(name, justify="right")
        for g in growth[-growth_rows:]:
            by = g["added_by_type"]
            table.add_row(str(g["step"]), str(g["added"]), str(by["deduction"]), str(by["abduction"]),
                          str(by["induction"]), str(g["duplicates"]), str(g["rejected"]), str(g["total"]))  # fmt: skip
        console.print(table)


def print_import(console: Console, report: ImportReport, db: str) -> None:
    console.print(
        f"[bold]{report.path}[/bold] → {db}: {report.lines} lines, {report.candidates} candidate tasks validated "
        f"in {report.seconds:.1f} s"
    )
    summary = Table(title="result", title_justify="left")
    summary.add_column("outcome")
    summary.add_column("count", justify="right")
    summary.add_row("added", str(report.added), style="green")
    summary.add_row("duplicate", str(report.duplicates))
    for reason, n in sorted(report.rejected.items()):
        summary.add_row(f"rejected: {reason}", str(n), style="red")
    for reason, n in sorted(report.malformed.items()):
        summary.add_row(f"malformed line: {reason}", str(n), style="yellow")
    if report.skipped_type:
        summary.add_row("skipped (type not selected)", str(report.skipped_type))
    console.print(summary)
    for p in report.problems[:10]:
        console.print(f"  line {p.line}: {p.reason}: {p.detail}", style="yellow", markup=False)
    more = sum(report.malformed.values()) - min(10, len(report.problems))
    if more > 0:
        console.print(f"  ... {more} more malformed lines (--json lists up to 100)")
