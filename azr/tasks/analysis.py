"""Static facts about a program, from its AST only: complexity, imports, escape hatches, ``def f``.

The deny lists here shape rewards (a proposer should not write programs that depend on the clock
or the file system); they are not a security boundary. Containment is the sandbox's job.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from azr.tasks.record import Complexity

# Modules whose use makes a task nondeterministic, environment-dependent or I/O-bound
# (the paper's list plus the obvious siblings it missed).
DEFAULT_BANNED_MODULES = frozenset(
    {
        "os", "sys", "subprocess", "shutil", "socket", "random", "secrets", "time", "datetime",
        "calendar", "zoneinfo", "threading", "_thread", "multiprocessing", "concurrent", "asyncio",
        "sched", "queue", "logging", "hashlib", "hmac", "bcrypt", "uuid", "pathlib", "io", "tempfile",
        "glob", "fnmatch", "fileinput", "signal", "ctypes", "cffi", "importlib", "pkgutil", "runpy",
        "builtins", "__builtin__", "gc", "inspect", "traceback", "pickle", "marshal", "shelve",
        "dbm", "sqlite3", "zipfile", "tarfile", "gzip", "bz2", "lzma", "mmap", "resource", "select",
        "selectors", "pty", "tty", "termios", "fcntl", "platform", "sysconfig", "site", "atexit",
        "faulthandler", "tracemalloc", "code", "codeop", "pdb", "webbrowser", "urllib", "http",
        "ftplib", "smtplib", "ssl", "email", "requests", "pebble", "posix", "nt", "pwd", "grp",
    }
)  # fmt: skip

# Builtins that import, evaluate text, touch files or the interpreter (the official code let
# `__import__('random')` through); plus attribute names used to climb out of a namespace.
DEFAULT_BANNED_NAMES = frozenset(
    {
        "__import__", "eval", "exec", "compile", "open", "input", "globals", "locals", "vars",
        "breakpoint", "exit", "quit", "help", "memoryview", "__builtins__", "__loader__", "__spec__",
        "__globals__", "__subclasses__", "__code__", "__closure__", "__getattribute__", "__bases__",
        "__mro__", "__base__", "f_globals", "f_locals", "f_back",
        "gi_frame", "cr_frame", "tb_frame",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One static problem: the offending name and the line it is on."""

    name: str
    line: int

    def __str__(self) -> str:
        return f"{self.name} (line {self.line})"


def quiet_parse(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse`` without the SyntaxWarnings (``1if x``, bad escapes) that model text is full of."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode=mode)


def parse_program(source: str) -> ast.Module | str:
    """Parse program text; return the module AST or a one-line reason it does not parse."""
    try:
        tree = quiet_parse(source)
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except (ValueError, MemoryError, RecursionError, OverflowError) as exc:
        return f"{type(exc).__name__}: program cannot be parsed"
    assert isinstance(tree, ast.Module)
    return tree


def defines_f(tree: ast.Module) -> bool:
    """True when the module defines a top-level ``def f`` (classes and helpers may sit around it)."""
    return any(isinstance(node, ast.FunctionDef) and node.name == "f" for node in tree.body)


def complexity(tree: ast.Module, source: str) -> Complexity:
    """AST node count, AST depth and non-blank lines: cheap proxies for how much a program does."""
    nodes = 0
    depth = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        nodes += 1
        depth = max(depth, d)
        # Load/Store/Del markers are bookkeeping, not program structure.
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(node) if not isinstance(c, ast.expr_context))
    lines = sum(1 for line in source.splitlines() if line.strip())
    return Complexity(ast_nodes=nodes, ast_depth=depth, lines=lines)


def import_statements(tree: ast.Module) -> list[str]:
    """The program's import statements, normalized (kept for records and the buffer's statistics)."""
    return [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def banned_imports(
    tree: ast.Module, banned: Iterable[str], allowed: Iterable[str] | None = None
) -> list[Finding]:
    """Imports that hit the deny list (any dotted component, ``from`` module or imported name).

    With ``allowed`` set, every import whose top-level module is not in it is also reported.
    Relative imports are always reported: a task is a single file with nothing to import from.
    """
    banned_set = frozenset(banned)
    allowed_set = None if allowed is None else frozenset(allowed)
    found: list[Finding] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            extra: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(Finding("." * node.level + (node.module or ""), node.lineno))
                continue
            modules = [node.module or ""]
            extra = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".") + extra
            if any(part in banned_set for part in parts) or (
                allowed_set is not None and module.split(".")[0] not in allowed_set
            ):
                found.append(Finding(module, node.lineno))
    return found


def banned_names(tree: ast.Module, banned: Iterable[str]) -> list[Finding]:
    """Uses of escape-hatch builtins or attributes (``eval``, ``x.__globals__``, ``'__class__'``...).

    A builtin name the program binds itself (``def f(input): return input[::-1]``) is the
    program's own variable, not the builtin, and is not reported.
    """
    banned_set = frozenset(banned)
    bound = _bound_names(tree)
    found: list[Finding] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Name) and node.id in banned_set:
            if node.id not in bound or node.id.startswith("__"):
                found.append(Finding(node.id, line))
        elif isinstance(node, ast.Attribute) and node.attr in banned_set:
            found.append(Finding("." + node.attr, line))
        elif isinstance(node, ast.Constant) and _attribute_string(node.value, banned_set):
            found.append(Finding(repr(node.value), line))
    return found


def _attribute_string(value: object, banned: frozenset[str]) -> bool:
    """A string naming a banned dunder or frame attribute (as passed to ``getattr``)."""
    return isinstance(value, str) and value in banned and value.startswith(("__", "f_", "gi_", "cr_", "tb_"))


def _bound_names(tree: ast.Module) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return bound
