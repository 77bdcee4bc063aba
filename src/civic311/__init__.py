"""civic311: a typed, resilient Open311 GeoReport v2 client.

    >>> import civic311
    >>> client = civic311.Client("https://city.example/open311/v2")

`Client` and `AsyncClient` speak every GeoReport v2 method in XML and JSON; the models are in
`civic311.models`, the error tree in `civic311.errors`; `to_dict` / `from_dict` carry any model
to JSON-ready dicts and back. `civic311.testing.FakeCity` is a GeoReport v2 city to test against.
"""

from typing import TYPE_CHECKING, Any

# Imported at start-up: the sync client, the models and the errors, which every program that
# calls a city uses. Everything else loads on first use (`__getattr__` below), to keep
# `import civic311` within 1.4x `import httpx` (issue 13; bench/import_time.py measures it).
from civic311._client.client import Client
from civic311._version import __version__
from civic311.errors import (
    AllEndpointsFailedError,
    APIError,
    Attempt,
    BadRequestError,
    CityStatusWarning,
    Civic311Error,
    Civic311Warning,
    DecodeError,
    DuplicateKeyError,
    EmergencySuspectedError,
    EmergencyWarning,
    ForbiddenError,
    HarvestWarning,
    InvalidRequestError,
    LedgerFileError,
    LedgerSchemaError,
    NotFoundError,
    Problem,
    RateLimitedError,
    ResponseTooLargeError,
    RetiredCityError,
    ServerError,
    SubmissionUncertainError,
    TransportError,
    UnknownCityError,
    UntrackableReceiptError,
    ValidationFailedError,
    WaitTimeoutError,
)
from civic311.models import (
    Attribute,
    AttributeDatatype,
    AttributeValue,
    ErrorDetail,
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    ServiceType,
    Status,
    TokenStatus,
)

__all__ = [
    "APIError",
    "AllEndpointsFailedError",
    "AsyncClient",
    "Attempt",
    "AttemptEvent",
    "Attribute",
    "AttributeDatatype",
    "AttributeValue",
    "BadRequestError",
    "CityStatusWarning",
    "Civic311Error",
    "Civic311Warning",
    "Client",
    "Clock",
    "DecodeError",
    "DuplicateKeyError",
    "EmergencySuspectedError",
    "EmergencyWarning",
    "EndpointHealth",
    "EndpointState",
    "ErrorDetail",
    "ForbiddenError",
    "HarvestWarning",
    "InvalidRequestError",
    "LedgerFileError",
    "LedgerSchemaError",
    "MediaFile",
    "NewRequest",
    "NotFoundError",
    "Problem",
    "Profile",
    "RateLimitedError",
    "Receipt",
    "ResponseTooLargeError",
    "RetiredCityError",
    "RetryPolicy",
    "ServerError",
    "Service",
    "ServiceDefinition",
    "ServiceRequest",
    "ServiceType",
    "Status",
    "StatusChange",
    "SubmissionUncertainError",
    "SystemClock",
    "TokenStatus",
    "Tracked",
    "TransportError",
    "UnknownCityError",
    "UntrackableReceiptError",
    "ValidationFailedError",
    "WaitTimeoutError",
    "__version__",
    "from_dict",
    "to_dict",
]

if TYPE_CHECKING:  # the names loaded on first use, for type checkers and IDEs
    from civic311._client.async_client import AsyncClient
    from civic311._client.execution import AttemptEvent
    from civic311._clock import Clock, SystemClock
    from civic311._resilience.pool import EndpointHealth, EndpointState
    from civic311._resilience.retry import RetryPolicy
    from civic311._wire.converter import from_dict, to_dict
    from civic311.media import MediaFile
    from civic311.profiles import Profile
    from civic311.tracking import StatusChange, Tracked

#: Public name -> the module that defines it, imported on first access (PEP 562). AsyncClient
#: brings anyio; from_dict/to_dict bring cattrs.
_LAZY = {
    "AsyncClient": "civic311._client.async_client",
    "AttemptEvent": "civic311._client.execution",
    "Clock": "civic311._clock",
    "EndpointHealth": "civic311._resilience.pool",
    "EndpointState": "civic311._resilience.pool",
    "MediaFile": "civic311.media",
    "Profile": "civic311.profiles",
    "RetryPolicy": "civic311._resilience.retry",
    "StatusChange": "civic311.tracking",
    "SystemClock": "civic311._clock",
    "Tracked": "civic311.tracking",
    "from_dict": "civic311._wire.converter",
    "to_dict": "civic311._wire.converter",
}


# The features stand on the client, not under it (docs/architecture.md): `civic311` imports
# none of them, so their names are found in their own public modules. Earlier versions exported
# these four from here; the error says where they are now.
_MOVED = {
    "FlushReport": "civic311.outbox",
    "Ledger": "civic311.ledger",
    "Outbox": "civic311.outbox",
    "OutboxEntry": "civic311.outbox",
}

# Defined for the interpreter only: type checkers see the names through the imports above, and
# a misspelt name stays an error for them (a visible module __getattr__ would make any name Any).
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            if name in _MOVED:
                raise AttributeError(
                    f"civic311.{name} moved to its feature's module: "
                    f"from {_MOVED[name]} import {name}"
                )
            raise AttributeError(f"module 'civic311' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups find it directly, without this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_LAZY))
