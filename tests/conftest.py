"""Fixtures shared by every test module; plain helpers live in helpers.py."""

from __future__ import annotations

import pytest

from helpers import ASYNC_BACKENDS, Both


@pytest.fixture(params=ASYNC_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every ``@pytest.mark.anyio`` test runs on asyncio and on trio: AsyncClient promises any
    runtime anyio supports (issue 10, case 5)."""
    return str(request.param)


@pytest.fixture(params=["sync", *ASYNC_BACKENDS])
def both(request: pytest.FixtureRequest) -> Both:
    """A scenario runner: once for `Client`, and for `AsyncClient` once on each event loop."""
    if request.param == "sync":
        return Both("sync")
    return Both("async", backend=request.param)
