"""The layers of the code, enforced: every import of api/, chain/, verifier/ and claims/ is read
with ``ast`` and checked against the rules of docs/architecture.md.

Every ``import`` and ``from ... import`` statement counts, wherever it is: at the top, inside a
function, under ``if TYPE_CHECKING:`` (a type-only import is still an arrow between modules).
Relative imports are resolved. An import names the deepest module of ours it reaches:
``from api.flows import ports`` is an arrow to ``api.flows.ports``, ``from chain.model import
Hospital`` one to ``chain.model``. Imports of other distributions are not arrows. tests/,
bench/ and scripts/ are not scanned.

The rules:

- no import cycle among our modules;
- ``api/routes/*`` import only ``api.flows.*``, ``api.read.*``, ``api.deps``, ``api.errors``,
  ``api.refusals``, ``api.db.models`` and the pure modules (``chain.model``, ``chain.merkle``,
  ``chain.errors``, ``verifier.*``, ``claims.*``); never another route;
- ``api/flows/*`` and ``api/read/*`` never import a route nor the composition root
  (``api.bootstrap``, ``api.app``, ``api.cli``, ``api.deps``), and reach the ledger through
  ``api.flows.ports.Ledger``, never its implementations (the gateway, a session, the log);
- only ``api/app.py``, ``api/cli.py`` and ``api/deps.py`` import ``api.bootstrap``; the routes
  are imported by the app alone, the app by the cli alone, ``api.deps`` by routes and the app;
- ``verifier/*`` never imports a module that talks to a node or a store, nor ``api``;
- ``chain/*`` imports only ``chain``; ``claims/*`` imports nothing of ours;
- nothing outside ``api/demo/`` imports ``api.demo.*`` but ``api/cli.py`` (``run --demo``,
  ``seed``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "chain", "verifier", "claims")


# -- the walker ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Arrow:
    """One import statement of ours: module ``source`` imports module ``target`` at ``line``."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def find_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root`` by dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _ours(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of ours that importing ``name`` runs, or None (not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _base(module: str, path: Path, level: int) -> str:
    """The package a relative import of ``level`` dots in ``module`` starts from."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return package


def arrows_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Arrow]:
    """The arrows of every import statement anywhere in the file of ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _base(module, path, node.level)
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            # ``from pkg import name``: name may be a submodule (an arrow to it) or an attribute
            # of pkg (an arrow to pkg).
            names = [f"{origin}.{alias.name}" for alias in node.names if alias.name != "*"]
            names = names or [origin]
        else:
            continue
        for name in names:
            target = _ours(name, modules)
            if target is not None and target != module:
                yield Arrow(module, target, node.lineno)


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, list[Arrow]]:
    """Module -> its arrows (sorted), for every module of ``packages``."""
    modules = find_modules(root, packages)
    return {m: sorted(set(arrows_of(m, p, modules))) for m, p in modules.items()}


def find_cycles(graph: dict[str, list[Arrow]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), each as
    the path ``a -> b -> ... -> a`` found in it."""
    successors = {m: sorted({a.target for a in arrows}) for m, arrows in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        # Iterative Tarjan: the import graph is deep enough to worry the recursion limit.
        work = [(v, iter(successors.get(v, ())))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

    for v in sorted(successors):
        if v not in index:
            connect(v)
    return [_cycle_in(component, successors) for component in sorted(components)]


def _cycle_in(component: list[str], successors: dict[str, list[str]]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component (BFS)."""
    inside = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in successors[node]:
                if child not in inside:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in the component {component}")


# -- the rules ----------------------------------------------------------------------------------

GRAPH = import_graph(ROOT, PACKAGES)

#: chain modules with no node, store or process behind them: data, proofs, error types.
PURE_CHAIN = ("chain.model", "chain.merkle", "chain.errors")
#: chain modules that talk to a node, hold a store or drive them.
NODE_OR_STORE = (
    "chain.ledger",
    "chain.factory",
    "chain.embedded",
    "chain.rpc",
    "chain.backend",
    "chain.sequencer",
    "chain.log",
    "chain.invoice_log",
    "chain.keys",
)
ENTRY_POINTS = ("api.app", "api.cli", "api.deps")


def _in(module: str, *prefixes: str) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one of them."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _offending(
    sources: Callable[[str], bool], refused: Callable[[Arrow], bool], graph: dict[str, list[Arrow]]
) -> list[str]:
    return [
        str(a) for m, arrows in sorted(graph.items()) if sources(m) for a in arrows if refused(a)
    ]


def _report(rule: str, offending: list[str]) -> str:
    return f"{rule}; {len(offending)} arrow(s) against it:\n  " + "\n  ".join(offending)


def test_the_walker_sees_the_whole_code() -> None:
    assert len(GRAPH) > 50, sorted(GRAPH)
    assert {"api.app", "api.routes.claims", "chain.model", "verifier.pipeline"} <= set(GRAPH)
    assert any(_in(m, "claims") for m in GRAPH)
    assert sum(len(arrows) for arrows in GRAPH.values()) > 100


def test_no_import_cycles() -> None:
    cycles = [" -> ".join(cycle) for cycle in find_cycles(GRAPH)]
    assert not cycles, _report("no import cycles, type-only imports included", cycles)


def test_routes_import_only_flows_reads_deps_errors_and_pure_types() -> None:
    def refused(a: Arrow) -> bool:
        return not (
            _in(a.target, "api.flows", "api.read", "verifier", "claims", *PURE_CHAIN)
            or a.target in ("api.deps", "api.errors", "api.refusals", "api.db.models")
            or _in(a.target, "api.routes")  # the next rule's, with its own message
        )

    offending = _offending(lambda m: _in(m, "api.routes"), refused, GRAPH)
    assert not offending, _report(
        "api/routes/* import only api.flows.*, api.read.*, api.deps, api.errors, api.refusals, "
        f"api.db.models and the pure {', '.join(PURE_CHAIN)}, verifier.*, claims.*",
        offending,
    )


def test_no_route_imports_another_route() -> None:
    offending = _offending(
        lambda m: _in(m, "api.routes"), lambda a: _in(a.target, "api.routes"), GRAPH
    )
    assert not offending, _report("no route imports another route", offending)


def test_flows_and_reads_never_import_routes_or_the_composition_root() -> None:
    offending = _offending(
        lambda m: _in(m, "api.flows", "api.read"),
        lambda a: _in(a.target, "api.routes", "api.bootstrap", *ENTRY_POINTS),
        GRAPH,
    )
    assert not offending, _report(
        "api/flows/* and api/read/* never import api.routes.*, api.bootstrap, api.app, "
        "api.cli or api.deps (they get their collaborators in their constructors)",
        offending,
    )


#: What the flows and reads never hold: they get a ``ports.Ledger`` (the gateway) instead.
LEDGER_IMPLEMENTATIONS = (
    "api.adapters.ledger",
    "chain.ledger",
    "chain.factory",
    "chain.embedded",
    "chain.rpc",
    "chain.backend",
    "chain.log",
    "chain.invoice_log",
    "chain.keys",
)


def test_flows_and_reads_reach_the_ledger_through_its_port() -> None:
    offending = _offending(
        lambda m: _in(m, "api.flows", "api.read"),
        lambda a: _in(a.target, *LEDGER_IMPLEMENTATIONS),
        GRAPH,
    )
    assert not offending, _report(
        "api/flows/* and api/read/* type the ledger as api.flows.ports.Ledger, never import "
        f"{', '.join(LEDGER_IMPLEMENTATIONS)}",
        offending,
    )


def test_only_the_entry_points_import_bootstrap() -> None:
    offending = _offending(
        lambda m: m not in ENTRY_POINTS, lambda a: a.target == "api.bootstrap", GRAPH
    )
    assert not offending, _report(
        "only api/app.py, api/cli.py and api/deps.py import api.bootstrap", offending
    )


#: The top of the service and who alone may import it: the web app mounts the routes, the
#: command line serves the app, routes (and the app) take their dependencies from deps.
TOP = {
    "api.routes": ("api.app",),
    "api.app": ("api.cli",),
    "api.cli": (),
    "api.deps": ("api.routes", "api.app"),
}


def test_the_top_is_imported_only_from_above() -> None:
    offending = [
        str(a)
        for m, arrows in sorted(GRAPH.items())
        for a in arrows
        for top, importers in TOP.items()
        if _in(a.target, top) and not _in(m, top, *importers)
    ]
    assert not offending, _report(
        "routes are imported only by api/app.py, the app only by api/cli.py, the cli by "
        "nothing, api.deps only by routes and the app",
        offending,
    )


def test_verifier_never_imports_what_talks_to_a_node() -> None:
    offending = _offending(
        lambda m: _in(m, "verifier"), lambda a: _in(a.target, "api", *NODE_OR_STORE), GRAPH
    )
    assert not offending, _report(
        f"verifier/* never imports api nor {', '.join(NODE_OR_STORE)} (it works offline)",
        offending,
    )


def test_chain_imports_only_chain() -> None:
    offending = _offending(lambda m: _in(m, "chain"), lambda a: not _in(a.target, "chain"), GRAPH)
    assert not offending, _report("chain/* imports nothing of ours outside chain", offending)


def test_claims_imports_nothing_of_ours() -> None:
    offending = _offending(lambda m: _in(m, "claims"), lambda a: not _in(a.target, "claims"), GRAPH)
    assert not offending, _report("claims/* imports nothing of api, chain or verifier", offending)


def test_demo_is_for_development_only() -> None:
    offending = _offending(
        lambda m: not _in(m, "api.demo") and m != "api.cli",
        lambda a: _in(a.target, "api.demo"),
        GRAPH,
    )
    assert not offending, _report(
        "nothing outside api/demo/ imports api.demo.* but api/cli.py (run --demo, seed)", offending
    )


# -- the walker itself, on a tree made for it ---------------------------------------------------

SYNTHETIC = {
    "pkg/__init__.py": "",
    "pkg/a.py": "from __future__ import annotations\nimport os\nfrom pkg import b\n",
    "pkg/b.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import Thing\n"
    ),
    "pkg/c.py": "def late():\n    from .a import x\n    return x\n",
    "pkg/sub/__init__.py": "from . import leaf\n",
    "pkg/sub/leaf.py": "from ..b import y\nfrom pkg.sub import *\nimport pkg.sub.leaf\n",
    "other/__init__.py": "",
    "other/alone.py": "import pkg.sub\nfrom elsewhere import pkg\n",
}


@pytest.fixture
def synthetic(tmp_path: Path) -> dict[str, list[Arrow]]:
    for name, text in SYNTHETIC.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return import_graph(tmp_path, ("pkg", "other"))


def test_walker_sees_type_checking_and_function_local_imports(
    synthetic: dict[str, list[Arrow]],
) -> None:
    assert synthetic["pkg.b"] == [Arrow("pkg.b", "pkg.c", 3)]  # under if TYPE_CHECKING
    assert synthetic["pkg.c"] == [Arrow("pkg.c", "pkg.a", 2)]  # inside a function, relative


def test_walker_resolves_relative_imports_and_ignores_other_distributions(
    synthetic: dict[str, list[Arrow]],
) -> None:
    assert synthetic["pkg.a"] == [Arrow("pkg.a", "pkg.b", 3)]  # os is not ours
    assert synthetic["pkg.sub"] == [Arrow("pkg.sub", "pkg.sub.leaf", 1)]
    assert synthetic["pkg.sub.leaf"] == [
        Arrow("pkg.sub.leaf", "pkg.b", 1),
        Arrow("pkg.sub.leaf", "pkg.sub", 2),
    ]
    assert synthetic["other.alone"] == [Arrow("other.alone", "pkg.sub", 1)]


def test_walker_reports_cycles_as_paths(synthetic: dict[str, list[Arrow]]) -> None:
    assert find_cycles(synthetic) == [
        ["pkg.a", "pkg.b", "pkg.c", "pkg.a"],
        ["pkg.sub", "pkg.sub.leaf", "pkg.sub"],
    ]
    assert find_cycles({"x": [Arrow("x", "y", 1)], "y": []}) == []
