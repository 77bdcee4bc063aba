"""Test your 311 app against a city that behaves - and misbehaves - on demand.

`FakeCity` is a spec-true Open311 GeoReport v2 server that lives in your test process. Mount
it as an httpx transport (no sockets) or serve it on 127.0.0.1 (real sockets, real faults)::

    from datetime import datetime, timezone
    import httpx
    from civic311.testing import Dialect, FakeCity, Fault, VirtualClock

    clock = VirtualClock(start=datetime(2026, 1, 1, tzinfo=timezone.utc))
    city = FakeCity(seed=0, clock=clock)

    # In process: fast, deterministic, time is virtual.
    with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
        assert http.get("services.json").status_code == 200

    # On a loopback port: for code that opens its own connections.
    with city.serve() as base_url:
        city.inject(Fault.status(503, retry_after="2"), times=1)
        ...

    city.generate_requests(10_000)              # a seeded history to harvest
    city = FakeCity(dialect=Dialect.chicago())  # or speak like a real server

From a shell, ``python -m civic311.testing`` (or ``civic311 fake-city``) serves one on
127.0.0.1 until Ctrl-C and prints its base URL first (``--port``, ``--seed``, ``--dialect``,
``--uploads``, ``--fault``; ``--help`` lists them).

With pytest, the `civic311` plugin (installed with the package) gives you the fixtures
``fake_city``, ``fake_city_url`` and ``fake_city_clock``; see `civic311.testing.plugin`.

Names:

* `FakeCity` - the server; `CallRecord` - one request it saw.
* `VirtualClock` - a `civic311._clock.Clock` whose time moves only when told.
* `Fault`, `InjectedFault`, `Faults` - misbehaviour on demand.
* `Dialect` - the documented deviations of real servers, with presets.
* `CityStore`, `ServiceSpec`, `AttributeSpec`, `ValueSpec`, `StoredRequest`, `StoredMedia`,
  `default_services` - the city's data.
* `DiscoveryEndpointSpec` - an endpoint the city's discovery document lists.
* `FakeCityTransport` - the object `FakeCity.transport()` returns.

Names are imported lazily, so ``import civic311.testing`` (and the pytest plugin) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from civic311.testing._city import CallRecord, FakeCity
    from civic311.testing._dialect import Dialect
    from civic311.testing._discovery import DiscoveryEndpointSpec
    from civic311.testing._faults import Fault, Faults, InjectedFault
    from civic311.testing._model import (
        AttributeSpec,
        ServiceSpec,
        StoredMedia,
        StoredRequest,
        ValueSpec,
        default_services,
    )
    from civic311.testing._store import CityStore
    from civic311.testing._transport import FakeCityTransport
    from civic311.testing._vclock import VirtualClock

__all__ = [
    "AttributeSpec",
    "CallRecord",
    "CityStore",
    "Dialect",
    "DiscoveryEndpointSpec",
    "FakeCity",
    "FakeCityTransport",
    "Fault",
    "Faults",
    "InjectedFault",
    "ServiceSpec",
    "StoredMedia",
    "StoredRequest",
    "ValueSpec",
    "VirtualClock",
    "default_services",
]

_HOMES = {
    "AttributeSpec": "_model",
    "CallRecord": "_city",
    "CityStore": "_store",
    "DiscoveryEndpointSpec": "_discovery",
    "Dialect": "_dialect",
    "FakeCity": "_city",
    "FakeCityTransport": "_transport",
    "Fault": "_faults",
    "Faults": "_faults",
    "InjectedFault": "_faults",
    "ServiceSpec": "_model",
    "StoredMedia": "_model",
    "StoredRequest": "_model",
    "ValueSpec": "_model",
    "VirtualClock": "_vclock",
    "default_services": "_model",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'civic311.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"civic311.testing.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
