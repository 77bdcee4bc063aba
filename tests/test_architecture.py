"""The house's shape, read from the package's own imports (docs/architecture.md).

Every module of ``civic311`` sits on one floor; an import may only run down to a lower floor or
stay inside its own package. There are no import cycles, the client imports no feature, and
the features (journal, outbox, bulk, stats, triage, the CLI) reach the client only through
``civic311``'s public names, never through ``_client``, ``_protocol`` or ``_resilience``.

Every import counts: those under ``if TYPE_CHECKING:`` (a type a module names is a module it
depends on; a reader and a type checker must load it) and those inside functions (lazy imports)
alike. A module that needs a higher floor's type takes a Protocol or a type parameter instead
(``errors.SubmissionUncertainError`` is generic in the request it carries).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import civic311

SRC = Path(civic311.__file__).resolve().parent.parent

#: The floors, from the ground up (../shared/DESIGN.md, "Layers"). A component is a top-level
#: module or package of civic311; every module inside a package shares its floor.
FLOORS: dict[str, int] = {
    "civic311._version": 0,
    "civic311._regex": -1,
    "civic311.errors": 0,
    # the base of internal records (plain slotted classes, not attrs: issue 13)
    "civic311._record": 0,
    # leaves: time, datetimes, files a user holds, profiles (plain data), storage
    "civic311._w3c": 1,
    "civic311._checks": 1,
    "civic311._secrets": 1,
    "civic311._clock": 1,
    "civic311._sqlite": 1,
    "civic311.media": 1,
    "civic311.profiles": 1,
    "civic311.models": 2,
    # pure checks of a request against its definition (submit's validate=True uses them)
    "civic311.validation": 3,
    # the journal's storage: its interface and the SQLite store (no client, no feature)
    "civic311._journal": 3,
    "civic311._wire": 4,
    "civic311._resilience": 5,
    "civic311._protocol": 6,
    "civic311.harvest": 7,
    "civic311.tracking": 7,
    "civic311.discovery": 7,
    "civic311.cities": 7,
    "civic311._client": 8,
    "civic311": 9,
    # ---- features: on the client's public API only ----
    "civic311.testing": 10,
    "civic311.triage": 10,
    "civic311.stats": 10,
    "civic311.ledger": 11,
    "civic311.outbox": 12,
    "civic311.bulk": 13,
    "civic311.cli": 14,
}

#: The client's insides, which no feature may import.
CLIENT_CORE = ("civic311._client", "civic311._protocol", "civic311._resilience")
FEATURE_FLOOR = 10

#: Imports that break the rules today, each to be removed by the one-house redesign (issue 10).
#: This list may only shrink; the test fails when an entry no longer occurs, so it cannot rot.
PENDING: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = (
                    module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                )
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            if base == "civic311" or base.startswith("civic311."):
                yield base
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "civic311" or alias.name.startswith("civic311."):
                    yield alias.name


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((SRC / "civic311").rglob("*.py")):
        module = _module_name(path)
        graph[module] = {target for target in _imports(path, module) if target != module}
    return graph


def _component(module: str) -> str:
    """The entry of `FLOORS` a module belongs to (its longest matching prefix)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in FLOORS:
            return name
    raise AssertionError(f"{module} has no floor: add it to FLOORS in {__file__}")


def _violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for source, targets in graph.items():
        home = _component(source)
        for target in targets:
            there = _component(target)
            if there == home:
                continue
            upward = FLOORS[there] >= FLOORS[home]
            into_core = FLOORS[home] >= FEATURE_FLOOR and there.startswith(CLIENT_CORE)
            if upward or into_core:
                found.add((source, target))
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_floor() -> None:
    """Each module of the package belongs to a floor of the house."""
    for module in _graph():
        _component(module)


#: Cycles allowed to remain: none since the one-house redesign (issue 10). A new one must be named
#: here, with its reason, before it can land.
PENDING_CYCLES: list[set[str]] = []


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or round a loop (type-only, lazy imports too)."""
    cycles = [set(cycle) for cycle in _cycles(_graph())]
    assert [cycle for cycle in cycles if cycle not in PENDING_CYCLES] == []
    assert [cycle for cycle in PENDING_CYCLES if cycle not in cycles] == [], "fixed: drop it"


def test_imports_run_only_downward() -> None:
    """No import runs up a floor; no feature reaches into the client's insides."""
    violations = _violations(_graph())
    assert violations - PENDING == set(), "imports against the house's order"


def test_pending_list_only_shrinks() -> None:
    """Every entry still pending does occur: a fixed one must leave the list."""
    assert PENDING - _violations(_graph()) == set()


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        (
            {"civic311.models": {"civic311._client.base"}},
            {("civic311.models", "civic311._client.base")},
        ),
        ({"civic311.bulk": {"civic311._protocol"}}, {("civic311.bulk", "civic311._protocol")}),
        ({"civic311.bulk": {"civic311.models", "civic311"}}, set()),
        ({"civic311._wire.json": {"civic311._wire.xml"}}, set()),
    ],
)
def test_the_rules_catch_what_they_should(
    graph: dict[str, set[str]], expected: set[tuple[str, str]]
) -> None:
    """The checker itself flags an upward import and a feature reaching into the core."""
    assert _violations(graph) == expected


def test_the_cycle_finder_finds_a_loop() -> None:
    """A loop of three modules is reported as one cycle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


PUBLIC_MODULES = [
    "civic311",
    "civic311.bulk",
    "civic311.cities",
    "civic311.errors",
    "civic311.ledger",
    "civic311.outbox",
    "civic311.stats",
    "civic311.testing",
    "civic311.triage",
    "civic311.validation",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_exception_lives_in_errors(name: str) -> None:
    """An exception or warning a public module exports is defined in civic311.errors."""
    import importlib

    module = importlib.import_module(name)
    strays = [
        f"{name}.{attr}"
        for attr in getattr(module, "__all__", [])
        if isinstance(value := getattr(module, attr), type)
        and issubclass(value, (Exception, Warning))
        and value.__module__ != "civic311.errors"
    ]
    assert strays == []


def test_type_only_and_lazy_imports_are_counted(tmp_path: Path) -> None:
    """The reader sees imports under TYPE_CHECKING and inside functions, not only the top ones."""
    path = tmp_path / "sample.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from civic311.models import NewRequest\n"
        "def later() -> None:\n"
        "    import civic311.ledger\n",
        encoding="utf-8",
    )
    assert set(_imports(path, "civic311.sample")) == {"civic311.models", "civic311.ledger"}
