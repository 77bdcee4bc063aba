"""FakeCity stays independent of the client it tests: it imports only civic311._clock."""

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
