"""The public surface: Client and AsyncClient stay a pair, and __all__ is sorted and complete."""

from __future__ import annotations

import inspect

import pytest

import civic311

#: Methods that do no I/O and so are not coroutines on AsyncClient either.
NO_IO = frozenset({"health", "for_city"})

#: Methods that are iterators on Client and async iterators on AsyncClient.
ASYNC_ITERATORS = frozenset({"iter_requests", "watch"})


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member)
    }


def test_clients_have_the_same_methods_and_signatures() -> None:
    """Every public method of Client exists on AsyncClient with the same signature."""
    sync = _public(civic311.Client)
    async_ = _public(civic311.AsyncClient)
    sync.pop("close")
    async_.pop("aclose")
    assert sync.keys() == async_.keys()
    for name, signature in sync.items():
        assert signature.parameters == async_[name].parameters, name
        method = getattr(civic311.AsyncClient, name)
        if name in ASYNC_ITERATORS:
            assert inspect.isasyncgenfunction(method), name
            continue
        # health() reads memory only, so it is a plain method on both clients.
        awaited = name not in NO_IO
        assert inspect.iscoroutinefunction(method) is awaited, name


def test_clients_have_the_same_constructor() -> None:
    """Both constructors take the same options (only the httpx types differ)."""
    sync = inspect.signature(civic311.Client.__init__).parameters
    async_ = inspect.signature(civic311.AsyncClient.__init__).parameters
    assert list(sync) == list(async_)


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted, and every name in it exists."""
    names = civic311.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(civic311, name), name


def test_every_error_derives_from_civic311_error() -> None:
    """Every exception civic311 exports is in the one tree."""
    for name in civic311.__all__:
        obj = getattr(civic311, name)
        if isinstance(obj, type) and issubclass(obj, BaseException) and obj is not Warning:
            if issubclass(obj, Warning):
                continue
            assert issubclass(obj, civic311.Civic311Error), name


def test_error_tree_is_drawn_in_the_docstring() -> None:
    """Each error class appears in the errors module's tree drawing."""
    doc = civic311.errors.__doc__ or ""
    for name in civic311.__all__:
        obj = getattr(civic311, name)
        if isinstance(obj, type) and issubclass(obj, civic311.Civic311Error):
            assert name in doc, name


def test_version_is_the_user_agent() -> None:
    """The User-Agent names the package version."""
    from civic311._protocol import USER_AGENT

    assert f"civic311/{civic311.__version__}" == USER_AGENT


def test_sync_client_is_generated_from_the_async_one() -> None:
    """client.py is exactly what tools/unasync.py makes of async_client.py."""
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).parent.parent / "tools" / "unasync.py"
    done = subprocess.run(
        [sys.executable, str(tool), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_feature_names_moved_out_of_the_package_root() -> None:
    """civic311.Outbox and friends say where they live now, instead of importing a feature."""
    for name, home in [("Outbox", "civic311.outbox"), ("Ledger", "civic311.ledger")]:
        with pytest.raises(AttributeError, match=f"from {home} import {name}"):
            getattr(civic311, name)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        civic311.Nope  # type: ignore[attr-defined]  # noqa: B018
