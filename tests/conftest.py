"""Fixtures shared by every test module; plain helpers live in helpers.py."""

from __future__ import annotations

import pytest

from helpers import Both


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sync", "async"])
def both(request: pytest.FixtureRequest) -> Both:
    """A scenario runner, once for `Client` and once for `AsyncClient`."""
    return Both(request.param)
