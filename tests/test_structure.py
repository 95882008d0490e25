"""The package graph: no import cycles between the project's packages, and nothing below the CLI
imports from it. Every ``import`` counts, also those inside functions (a lazy import is still a
dependency). Nodes are the subpackages (``router.model``, ``serve_app``, ...) and the top-level
modules of ``router`` (``router.core``, ``router.rewards``, ...)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("router", "serve_app", "load_tests", "experiments")


def _node(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] != "router":
        return parts[0]
    if len(parts) == 1:
        return "router"
    return ".".join(parts[:2])  # router.model, router.core, ...


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            src = _node(_module_of(path))
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                else:
                    continue
                for name in names:
                    dst = _node(name)
                    if dst and dst != src and (dst != "router" or name == "router"):
                        graph[src].add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "active"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "active":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycles_between_packages():
    assert _cycles(import_graph()) == []


def test_nothing_below_the_cli_imports_it():
    # The scripts (load_tests, experiments) sit above the library and may run the CLI as a user does.
    users = sorted(src for src, dsts in import_graph().items() if "router.cli" in dsts and src.startswith("router"))
    assert users == [], f"{users} import router.cli (the CLI sits on top; move the shared piece down)"


def test_the_library_does_not_import_the_service_or_the_scripts():
    graph = import_graph()
    # router.cli is the top layer (``router keys`` edits the service's keys file); the rest of the
    # library must not reach up into the service or the scripts.
    up = {src: sorted(d for d in dsts if d in ("serve_app", "load_tests", "experiments"))
          for src, dsts in graph.items() if src.startswith("router") and src != "router.cli"}
    assert {k: v for k, v in up.items() if v} == {}
