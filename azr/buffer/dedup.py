"""Dedup keys: one task per (type, normalised program, canonical inputs).

The program is normalised on its AST so that the same program written with other names, comments,
docstrings, annotations or formatting gives the same text: every name the program binds (functions,
classes, parameters, locals, module variables) is renamed canonically in order of first appearance,
scope by scope. Names it does not bind (builtins, imported modules, attributes) are kept. Inputs are
canonicalised by the tasks' argument parser (canonical literal text per argument). Nothing here runs
the program. Keys are stored in buffer files: a change to the normalisation must come with a schema
version bump whose migration recomputes them.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Sequence

from azr.tasks.arguments import Arguments, parse_arguments

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


class _Scope:
    """Names bound in one function (or the module) and their canonical replacements."""

    def __init__(self, prefix: str, parent: _Scope | None) -> None:
        self.prefix, self.parent = prefix, parent
        self.local: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.names: dict[str, str] = {}
        self.functions: dict[str, _Scope] = {}  # function name bound here -> that function's scope

    def canonical(self, name: str) -> str:
        if name not in self.names:
            self.names[name] = f"{self.prefix}{len(self.names)}"
        return self.names[name]


def _params(args: ast.arguments) -> list[ast.arg]:
    found = [*args.posonlyargs, *args.args]
    if args.vararg is not None:
        found.append(args.vararg)
    found += args.kwonlyargs
    if args.kwarg is not None:
        found.append(args.kwarg)
    return found


def _strip_strings(body: list[ast.stmt]) -> list[ast.stmt]:
    """Drop docstrings and other bare string statements: they never change what a program does."""
    return [
        s
        for s in body
        if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str))
    ]


class _Binder(ast.NodeVisitor):
    """Pass 1: find which names each scope binds (Python's rule: bound anywhere means local)."""

    def __init__(self) -> None:
        self.module = _Scope("g", None)
        self.scopes: dict[int, _Scope] = {}
        self.stack: list[_Scope] = [self.module]

    def _bind(self, name: str) -> None:
        scope = self.stack[-1]
        if name in scope.globals:
            self.module.local.add(name)
        elif name not in scope.nonlocals:
            scope.local.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._bind(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.stack[-1].globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.stack[-1].nonlocals.update(node.names)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        """Imported names keep their names: they refer to modules outside the program."""

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self._bind(node.rest)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._bind(node.name)
        for child in (*node.bases, *node.keywords, *node.decorator_list):
            self.visit(child)
        # A class body binds attributes, not variables: its names stay, its methods get scopes.
        for stmt in node.body:
            if isinstance(stmt, _DEFS):
                self._function(stmt, bind_name=False)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                if stmt.value is not None:
                    self.visit(stmt.value)
            else:
                self.visit(stmt)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._function(node, bind_name=True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, bind_name=False)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, bind_name: bool) -> None:
        for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)):
            self.visit(default)
        scope = _Scope(f"v{len(self.stack)}_", self.stack[-1])
        self.scopes[id(node)] = scope
        if isinstance(node, _DEFS):
            for decorator in node.decorator_list:
                self.visit(decorator)
            if bind_name:
                self._bind(node.name)
                self.stack[-1].functions[node.name] = scope
        # Parameters are numbered first, in signature order.
        for arg in _params(node.args):
            scope.local.add(arg.arg)
            scope.canonical(arg.arg)
        self.stack.append(scope)
        for stmt in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(stmt)
        self.stack.pop()


class _Renamer(ast.NodeTransformer):
    """Pass 2: rename bound names, drop docstrings and annotations."""

    def __init__(self, binder: _Binder) -> None:
        self.binder = binder
        self.stack: list[_Scope] = [binder.module]

    def _owner(self, name: str) -> _Scope | None:
        scope: _Scope | None = self.stack[-1]
        while scope is not None:
            if name in scope.globals:
                return self.binder.module if name in self.binder.module.local else None
            if name in scope.local and name not in scope.nonlocals:
                return scope
            scope = scope.parent
        return None

    def _resolve(self, name: str) -> str:
        owner = self._owner(name)
        return owner.canonical(name) if owner is not None else name

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._resolve(node.id)
        return node

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> ast.AST:
        node.names = [self._resolve(n) for n in node.names]
        return node

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name:
            node.name = self._resolve(node.name)
        self.generic_visit(node)
        return node

    def visit_MatchAs(self, node: ast.MatchAs) -> ast.AST:
        if node.name:
            node.name = self._resolve(node.name)
        self.generic_visit(node)
        return node

    def visit_MatchStar(self, node: ast.MatchStar) -> ast.AST:
        if node.name:
            node.name = self._resolve(node.name)
        return node

    def visit_MatchMapping(self, node: ast.MatchMapping) -> ast.AST:
        if node.rest:
            node.rest = self._resolve(node.rest)
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        # Keyword arguments to one of the program's own functions name its (renamed) parameters.
        if isinstance(node.func, ast.Name):
            owner = self._owner(node.func.id)
            callee = owner.functions.get(node.func.id) if owner is not None else None
            if callee is not None:
                for kw in node.keywords:
                    if kw.arg is not None and kw.arg in callee.names:
                        kw.arg = callee.names[kw.arg]
        self.generic_visit(node)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        # `x: int = 3` and `x = 3` are one program; a bare `x: int` does nothing at run time.
        if node.value is None:
            return ast.Pass()
        return self.visit(ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno))

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self._resolve(node.name)
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        body: list[ast.stmt] = []
        for stmt in _strip_strings(node.body):
            if isinstance(stmt, _DEFS):
                body.append(self._function(stmt, rename=False))
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                if isinstance(stmt, ast.AnnAssign):
                    stmt.annotation = ast.Constant(None)
                if stmt.value is not None:
                    stmt.value = self.visit(stmt.value)
                body.append(stmt)
            else:
                body.append(self.visit(stmt))
        node.body = body or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node, rename=True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return self._function(node, rename=False)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, rename: bool) -> ast.AST:
        args = node.args
        args.defaults = [self.visit(d) for d in args.defaults]
        args.kw_defaults = [self.visit(d) if d is not None else None for d in args.kw_defaults]
        if isinstance(node, _DEFS):
            node.decorator_list = [self.visit(d) for d in node.decorator_list]
            node.returns = None
            if rename:
                node.name = self._resolve(node.name)
        scope = self.binder.scopes[id(node)]
        for arg in _params(args):
            arg.arg = scope.canonical(arg.arg)
            arg.annotation = None
        self.stack.append(scope)
        if isinstance(node, ast.Lambda):
            node.body = self.visit(node.body)
        else:
            visited = [self.visit(s) for s in node.body]
            node.body = [s for s in visited if s is not None] or [ast.Pass()]
        self.stack.pop()
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        node = super().generic_visit(node)
        # Dropping bare strings can empty a block (`if x: "doc"`); keep the program well-formed.
        if isinstance(node, (ast.stmt, ast.ExceptHandler, ast.match_case)) and getattr(node, "body", None) == []:
            node.body = [ast.Pass()]  # type: ignore[attr-defined]
        return node


@functools.lru_cache(maxsize=4096)
def normalize_program(program: str) -> str:
    """The program's canonical text; a program that does not parse is only whitespace-normalised.

    Cached: an official io row gives a deduction and an abduction task with the same program, and
    a proposer often reuses a reference program."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return "\n".join(line.rstrip() for line in program.strip().splitlines())
    try:
        binder = _Binder()
        binder.visit(tree)
        tree = _Renamer(binder).visit(tree)
        tree.body = [s for s in tree.body if s is not None]
        return ast.unparse(ast.fix_missing_locations(tree))
    except RecursionError:
        return "\n".join(line.rstrip() for line in program.strip().splitlines())


def canonical_input(text: str) -> str:
    """Canonical text of an argument list: `[1,2] , 'a'` and `[1, 2], "a"` give the same text.

    Uses the tasks' own argument parser, so the key agrees with what validation accepts; text it
    refuses (not a plain argument list) is only stripped.
    """
    parsed = parse_arguments(text, max_chars=len(text) + 1) if isinstance(text, str) else None
    if isinstance(parsed, Arguments):
        return parsed.text
    return str(text).strip()


def dedup_key(task_type: str, program: str, inputs: Sequence[str]) -> str:
    """A hex digest that is equal for two tasks exactly when the buffer treats them as one."""
    payload = json.dumps([task_type, normalize_program(program), [canonical_input(i) for i in inputs]])
    return hashlib.sha256(payload.encode()).hexdigest()
