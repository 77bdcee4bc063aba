"""FakeCity stays independent of the client it tests: it imports only civic311._clock.

Inside civic311.testing the modules form floors with no import cycle, every import counted.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import civic311.testing

ALLOWED_THIRD_PARTY = {"attrs", "httpx", "pytest"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_testing_package_imports_nothing_else_from_civic311() -> None:
    """Every civic311.* import in civic311/testing is civic311._clock or civic311.testing."""
    package = Path(civic311.testing.__file__).parent
    for path in sorted(package.glob("*.py")):
        for name in _imports(path):
            if name.startswith("civic311"):
                assert name == "civic311._clock" or name.startswith("civic311.testing"), (
                    f"{path.name} imports {name}"
                )


def test_only_stdlib_httpx_and_attrs() -> None:
    """Third-party imports are limited to httpx and attrs (pytest in the plugin only)."""
    package = Path(civic311.testing.__file__).parent
    for path in sorted(package.glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in {"civic311", "__future__"}:
                continue
            assert top in ALLOWED_THIRD_PARTY, f"{path.name} imports {name}"
            if top == "pytest":
                assert path.name == "plugin.py"


#: The floors of civic311.testing, from the ground up. A module imports only modules on lower
#: floors, *every* import counted: module-level, lazy (inside a function) and ``TYPE_CHECKING``
#: (issue 10: a review counting all three found ``_city <-> _discovery/_server/_transport``).
#: The transports know the city through `_handler`'s Protocols, discovery through plain values.
TESTING_FLOORS: dict[str, int] = {
    # leaves: plain data, wire formats, the fault registry, the clock
    "_dialect": 0,
    "_faults": 0,
    "_incoming": 0,
    "_model": 0,
    "_vclock": 0,
    "_wire": 0,
    "_render": 1,
    "_store": 1,
    # what the city uses and what the transports know of it
    "_discovery": 2,
    "_generate": 2,
    "_handler": 2,
    "_server": 3,
    "_transport": 3,
    "_city": 4,
    # the faces: the package's lazy names and the command line; the pytest plugin
    "__init__": 5,
    "_command": 5,
    "__main__": 6,
    "plugin": 6,
}

PACKAGE = "civic311.testing"


def _package_imports(source: str, stems: set[str]) -> set[str]:
    """The modules of civic311.testing (by file stem) that *source* imports, counting imports
    under ``if TYPE_CHECKING:`` and inside functions like any other."""

    def stem_of(name: str) -> str | None:
        if name == PACKAGE:
            return "__init__"
        head, _, tail = name.rpartition(".")
        return tail if head == PACKAGE and tail in stems else None

    targets: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against civic311.testing
                package = PACKAGE.split(".")[: 3 - node.level]
                base = ".".join([*package, base] if base else package)
            # ``from civic311.testing import _city`` imports the submodule itself
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        targets.update(stem for name in names if (stem := stem_of(name)) is not None)
    return targets


def _testing_graph() -> dict[str, set[str]]:
    """Each module of civic311/testing (by file stem) → the package's modules it imports."""
    package = Path(civic311.testing.__file__).parent
    stems = {path.stem for path in package.glob("*.py")}
    return {
        path.stem: _package_imports(path.read_text(encoding="utf-8"), stems) - {path.stem}
        for path in sorted(package.glob("*.py"))
    }


def _cycle_members(graph: dict[str, set[str]]) -> set[str]:
    """The modules that can reach themselves again by following imports (depth-first)."""
    members: set[str] = set()
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            node = todo.pop()
            if node == start:
                members.add(start)
                break
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
    return members


def test_testing_package_has_no_import_cycle_counting_every_import() -> None:
    """No civic311.testing module is in an import cycle, TYPE_CHECKING and lazy imports counted."""
    assert _cycle_members(_testing_graph()) == set()


def test_testing_modules_import_only_downward() -> None:
    """Every civic311.testing module has a floor and imports only modules on lower floors."""
    graph = _testing_graph()
    assert sorted(graph) == sorted(TESTING_FLOORS), "give each module a floor in TESTING_FLOORS"
    upward = {
        (source, target)
        for source, targets in graph.items()
        for target in targets
        if TESTING_FLOORS[target] >= TESTING_FLOORS[source]
    }
    assert upward == set()


def test_the_testing_cycle_check_sees_type_checking_and_lazy_imports() -> None:
    """The checker counts imports under TYPE_CHECKING and inside functions, and finds loops."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from civic311.testing._model import StoredRequest\n"
        "if TYPE_CHECKING:\n"
        "    from civic311.testing._city import FakeCity\n"
        "def serve():\n"
        "    from civic311.testing._server import LoopbackServer\n"
        "    from civic311.testing import _wire\n"
        "    import civic311.testing\n"
    )
    stems = {"_model", "_city", "_server", "_wire"}
    assert _package_imports(source, stems) == {"_model", "_city", "_server", "_wire", "__init__"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle_members(graph) == {"a", "b", "c"}
