"""civic311: a typed, resilient Open311 GeoReport v2 client.

    >>> import civic311
    >>> client = civic311.Client("https://city.example/open311/v2")

`Client` and `AsyncClient` speak every GeoReport v2 method in XML and JSON; the models are in
`civic311.models`, the error tree in `civic311.errors`; `to_dict` / `from_dict` carry any model
to JSON-ready dicts and back. `civic311.testing.FakeCity` is a GeoReport v2 city to test against.
"""

from typing import Any

from civic311._client.async_client import AsyncClient
from civic311._client.client import Client
from civic311._client.execution import AttemptEvent
from civic311._clock import Clock, SystemClock
from civic311._resilience import EndpointHealth, EndpointState, RetryPolicy
from civic311._version import __version__
from civic311._wire.converter import from_dict, to_dict
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
from civic311.media import MediaFile
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
from civic311.profiles import Profile
from civic311.tracking import StatusChange, Tracked

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

# The features stand on the client, not under it (docs/architecture.md): `civic311` imports
# none of them, so their names are found in their own public modules. Earlier versions exported
# these four from here; the error says where they are now.
_MOVED = {
    "FlushReport": "civic311.outbox",
    "Ledger": "civic311.ledger",
    "Outbox": "civic311.outbox",
    "OutboxEntry": "civic311.outbox",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        raise AttributeError(
            f"civic311.{name} moved to its feature's module: from {_MOVED[name]} import {name}"
        )
    raise AttributeError(f"module 'civic311' has no attribute {name!r}")
