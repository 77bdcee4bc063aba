"""Generate the sync `Client` from the async `AsyncClient`: one source, two clients.

The two clients are the only I/O in civic311 and must stay a pair (DESIGN promise 1). Once the
async side grew real logic (retries, failover, reconciliation, tracking), keeping two hand-written
copies in step became the risk, so — as httpcore and python-trio/unasync do (style.md, lesson 2)
— ``src/civic311/_client/async_client.py`` is the source and ``_client/client.py`` is
generated:

    python tools/unasync.py           # rewrite client.py
    python tools/unasync.py --check   # exit 1 if client.py is not what the source gives (make lint)

The rules are plain text replacements, applied in order; then ruff sorts the imports, turns
``for x in y: yield x`` (what ``async for … yield`` becomes) into ``yield from y``, and
formats. Every rule must fire, so a rule the source no longer needs is reported rather than
silently kept.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src/civic311/_client/async_client.py"
TARGET = ROOT / "src/civic311/_client/client.py"

#: Whole-text replacements: docstrings that say different things for each client.
DOCS = [
    (
        '''"""`AsyncClient`: the asynchronous GeoReport v2 client, `Client`'s twin.

The same methods with the same signatures, awaited (a test keeps the pair in step). A thin
driver over `httpx.AsyncClient`: everything it decides is decided below it, in pure code shared
with `Client`.
"""''',
        '''"""`Client`: the synchronous GeoReport v2 client.

GENERATED from async_client.py by tools/unasync.py: edit that file, then run the tool.

A thin driver: it builds calls through `civic311._protocol`, sends them with an `httpx.Client`,
reads bodies up to the size cap, and sleeps through its `Clock`. Everything it decides is
decided below it, in pure code shared with `ASYNC_TWIN`.
"""''',
    ),
    (
        '"""An asynchronous Open311 GeoReport v2 client (asyncio or trio, through httpx).',
        '"""A synchronous Open311 GeoReport v2 client.',
    ),
]

#: Token replacements, in order (longer names first so they are not split by shorter ones).
TOKENS = [
    ("httpx.AsyncBaseTransport", "httpx.BaseTransport"),
    ("abound_exchanges", "bound_exchanges"),
    ("adeadline_scope", "deadline_scope"),
    ("AsyncIterator", "Iterator"),
    ("AsyncClient", "Client"),
    ("aread_body", "read_body"),
    ("arefuse_downgrade", "refuse_downgrade"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    (".asleep", ".sleep"),
    ("aclose()", "close()"),
    ("def aclose(", "def close("),
    ("async def ", "def "),
    ("async with ", "with "),
    ("await ", ""),
]


def generate() -> str:
    """The sync client's source, as the rules make it from the async one."""
    text = SOURCE.read_text(encoding="utf-8")
    for old, new in DOCS + TOKENS:
        if old not in text:
            raise SystemExit(f"unasync: rule {old!r} no longer matches {SOURCE.name}")
        text = text.replace(old, new)
    text = text.replace("ASYNC_TWIN", "AsyncClient")  # a name the renames must not touch
    name = str(TARGET.relative_to(ROOT))
    ruff = [sys.executable, "-m", "ruff"]
    fixed = subprocess.run(  # noqa: S603 - our interpreter, our tool
        [
            *ruff,
            "check",
            "--fix",
            "--select",
            "I,UP028",
            "--unsafe-fixes",
            "--stdin-filename",
            name,
            "-",
        ],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout
    return subprocess.run(  # noqa: S603
        [*ruff, "format", "--stdin-filename", name, "-"],
        input=fixed,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


def main() -> int:
    generated = generate()
    if "--check" in sys.argv[1:]:
        if TARGET.read_text(encoding="utf-8") != generated:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python tools/unasync.py")
            return 1
        return 0
    TARGET.write_text(generated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
