"""What `import civic311` loads, and what it leaves for first use (issue 13, docs/performance.md).

Each check runs in a fresh interpreter, since this test process has long since imported
everything. No timing here: bench/import_time.py measures the time; these tests pin *which*
modules load, so that a stray top-level import cannot quietly bring a heavy one back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import civic311

#: Modules `import civic311` must not load: each is needed only by a feature that imports it
#: on first use (module: why it is heavy or what needs it).
NOT_AT_IMPORT = {
    "cattrs": "from_dict/to_dict and decoding (the converter)",
    "civic311._wire.converter": "the converter, on the first decode",
    "tenacity": "the tenacity adapter",
    "click": "the command line",
    "rich": "the command line",
    "sqlite3": "the outbox and the ledger",
    "civic311.outbox": "Outbox",
    "civic311.ledger": "Ledger",
    "civic311._journal": "the ledger's storage",
    "xml.etree.ElementTree": "nothing: civic311 parses XML with expat directly",
    "xml.parsers.expat": "the XML parser, on the first XML body",
    "defusedxml": "the XML parser's refusals",
    "civic311._wire.xml": "the XML parser, on the first XML body",
    "httpcore": "built with the first client (imports trio when installed)",
    "trio": "httpcore imports it when installed",
    "anyio": "AsyncClient",
    "asyncio": "AsyncClient",
    "civic311._client.async_client": "AsyncClient",
    "civic311.tracking": "track / watch",
    "civic311.profiles": "built with the first client (its profile)",
    "civic311._resilience.pool": "built with the first client (its endpoints)",
    "civic311.harvest": "iter_requests and list_requests' filters",
    "civic311._wire.json": "the JSON decoder, on the first JSON body",
    "civic311.validation": "submit(validate=True)",
    "civic311.discovery": "discovery",
    "civic311.cities": "the cities registry",
    "civic311.triage": "emergency triage",
    "civic311.bulk": "bulk submission",
    "civic311.stats": "statistics",
    "civic311.testing": "FakeCity",
    "decimal": "attribute values written from floats",
    "difflib": "a misspelt profile key",
    "html": "HTML error pages",
}

#: Block the command line's packages, as when civic311 is installed without its [cli] extra.
HIDE_CLI = "import sys\nfor name in ('click', 'rich', 'pygments'):\n    sys.modules[name] = None\n"


def _run(code: str) -> object:
    """The JSON a fresh interpreter prints after running *code*."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded_after_import(prefix: str = "", module: str = "civic311") -> set[str]:
    """The modules really loaded (a ``None`` entry is a blocked import) after ``import module``."""
    code = (
        f"{prefix}import json, sys\nimport {module}\n"
        "print(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))\n"
    )
    loaded = _run(code)
    assert isinstance(loaded, list)
    return set(loaded)


@pytest.mark.parametrize("prefix", ["", HIDE_CLI], ids=["with-cli", "without-cli"])
def test_import_leaves_heavy_modules_for_first_use(prefix: str) -> None:
    """`import civic311` loads none of the modules only a feature needs, with or without click
    (beyond what `import httpx` loads itself: its command line when click and rich are there)."""
    loaded = _loaded_after_import(prefix) - _loaded_after_import(prefix, "httpx")
    found = {
        name: why
        for name, why in NOT_AT_IMPORT.items()
        if name in loaded or any(module.startswith(name + ".") for module in loaded)
    }
    assert not found, f"loaded at import: {found}"


def test_import_loads_the_sync_client_models_and_errors() -> None:
    """`import civic311` still loads what every call needs: httpx, the client, models, errors."""
    loaded = _loaded_after_import()
    for name in ("httpx", "civic311._client.client", "civic311.models", "civic311.errors"):
        assert name in loaded, name


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    """Every name in `civic311.__all__` resolves, lazily loaded or not, and is listed by dir()."""
    result = _run(
        """
        import json
        import civic311
        missing = [name for name in civic311.__all__ if getattr(civic311, name, None) is None]
        unlisted = sorted(set(civic311.__all__) - set(dir(civic311)))
        print(json.dumps([missing, unlisted]))
        """
    )
    assert result == [[], []]


def test_star_import_gives_every_public_name() -> None:
    """`from civic311 import *` binds every name of `__all__`, the lazy ones included."""
    result = _run(
        """
        import json
        import civic311
        scope = {}
        exec("from civic311 import *", scope)
        print(json.dumps(sorted(set(civic311.__all__) - set(scope))))
        """
    )
    assert result == []


def test_lazy_names_are_the_defining_modules_objects() -> None:
    """A name loaded on first use is the very object its module defines (not a copy or proxy)."""
    from civic311._client.async_client import AsyncClient
    from civic311._wire.converter import from_dict
    from civic311.tracking import Tracked

    assert civic311.AsyncClient is AsyncClient
    assert civic311.from_dict is from_dict
    assert civic311.Tracked is Tracked


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A name civic311 does not have raises AttributeError naming it, as for any module."""
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = civic311.no_such_name  # type: ignore[attr-defined]


def test_first_use_loads_what_it_needs() -> None:
    """The first XML answer a client reads loads the converter (cattrs) and the XML parser."""
    result = _run(
        """
        import json, sys
        import civic311
        from civic311.testing import FakeCity
        city = FakeCity()
        with civic311.Client(city.base_url, transport=city.transport(), format="xml") as client:
            client.list_services()
        print(json.dumps([name in sys.modules for name in
              ("civic311._wire.converter", "cattrs", "civic311._wire.xml")]))
        """
    )
    assert result == [True, True, True]
