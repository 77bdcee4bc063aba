"""The city's data: services and requests, shared safely between threads and servers.

A `CityStore` is what two FakeCity instances share when they play a primary and its mirror::

    primary = FakeCity(clock=clock)
    mirror = FakeCity(store=primary.store, clock=clock)   # same services, same requests

Requests are kept sorted by `requested_datetime` in a list, with a parallel list of timestamps,
so a GET requests date window is two `bisect` calls plus a walk over the window (O(log n + k)).
Ids come from one counter per store, so a primary and a mirror never hand out the same id.
"""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone

import attrs

from civic311.testing._model import ServiceSpec, StoredRequest, default_services

__all__ = ["CityStore", "TokenRecord"]

#: The first id a store hands out. Six digits, like the spec's examples (``638344``).
FIRST_ID = 600001


@attrs.define
class TokenRecord:
    """A token handed out for a batch service, and when it may resolve (reference §2.4).

    The token answers "pending" until both `ready_at` has passed on the city's clock and it has
    been looked up more than `pending_lookups` times.
    """

    token: str
    service_request_id: str
    ready_at: datetime
    pending_lookups: int
    lookups: int = 0
    resolved: bool = False


def _key(record: StoredRequest) -> float:
    return record.requested_datetime.timestamp()


class CityStore:
    """Services and requests of one city, behind one lock. Give it to several FakeCity objects
    to serve the same data from several endpoints."""

    def __init__(self, seed: int = 0, services: Sequence[ServiceSpec] | None = None) -> None:
        self.seed = seed
        #: The store's lock (re-entrant). Hold it to read several things consistently.
        self.lock = threading.RLock()
        self._services: dict[str, ServiceSpec] = {}
        self._records: list[StoredRequest] = []
        self._keys: list[float] = []
        self._by_id: dict[str, StoredRequest] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._next_id = FIRST_ID
        self._generations = 0
        # Separate seeded streams, so that e.g. filing a request does not change what the next
        # generate_requests() call produces.
        self._token_rng = random.Random(f"{seed}/tokens")  # noqa: S311 - reproducible
        for service in default_services() if services is None else services:
            self.add_service(service)

    # -- services ----------------------------------------------------------------------------

    def add_service(self, service: ServiceSpec) -> ServiceSpec:
        """Add (or replace, by code) a service."""
        with self.lock:
            self._services[service.service_code] = service
        return service

    def remove_service(self, service_code: str) -> None:
        """Withdraw a service (its stored requests stay)."""
        with self.lock:
            self._services.pop(service_code, None)

    def services(self) -> list[ServiceSpec]:
        """All services, in the order they were added."""
        with self.lock:
            return list(self._services.values())

    def service(self, service_code: str) -> ServiceSpec | None:
        """The service with this code, or None."""
        with self.lock:
            return self._services.get(service_code)

    # -- requests ----------------------------------------------------------------------------

    def new_id(self) -> str:
        """Reserve the next service_request_id."""
        with self.lock:
            value = self._next_id
            self._next_id += 1
            return str(value)

    def new_token(self) -> str:
        """A fresh, seeded token (12 hex digits)."""
        with self.lock:
            while True:
                token = f"{self._token_rng.getrandbits(48):012x}"
                if token not in self._tokens:
                    return token

    def add(self, record: StoredRequest) -> StoredRequest:
        """Store one request, keeping the time order."""
        with self.lock:
            if record.service_request_id in self._by_id:
                raise ValueError(f"duplicate service_request_id {record.service_request_id!r}")
            key = _key(record)
            index = bisect.bisect_right(self._keys, key)
            self._keys.insert(index, key)
            self._records.insert(index, record)
            self._by_id[record.service_request_id] = record
        return record

    def add_many(self, records: Sequence[StoredRequest]) -> None:
        """Store many requests at once (one sort instead of many inserts)."""
        records = sorted(records, key=_key)  # already sorted when generated: O(n)
        with self.lock:
            for record in records:
                if record.service_request_id in self._by_id:
                    raise ValueError(f"duplicate service_request_id {record.service_request_id!r}")
                self._by_id[record.service_request_id] = record
            if self._records and records and _key(records[0]) < self._keys[-1]:
                self._records.extend(records)
                self._records.sort(key=_key)  # stable: equal times keep insertion order
                self._keys = [_key(r) for r in self._records]
            else:
                self._records.extend(records)
                self._keys.extend(_key(r) for r in records)

    def replace(self, record: StoredRequest) -> StoredRequest:
        """Swap in a changed version of a stored request (same id, same requested_datetime)."""
        with self.lock:
            old = self._by_id[record.service_request_id]
            if old.requested_datetime != record.requested_datetime:
                raise ValueError("replace() cannot move a request in time")
            key = _key(old)
            index = bisect.bisect_left(self._keys, key)
            while self._records[index] is not old:
                index += 1
            self._records[index] = record
            self._by_id[record.service_request_id] = record
        return record

    def get(self, service_request_id: str) -> StoredRequest | None:
        """The request with this id, or None."""
        with self.lock:
            return self._by_id.get(service_request_id)

    def records(self) -> list[StoredRequest]:
        """Every stored request, oldest first (a copy)."""
        with self.lock:
            return list(self._records)

    def __len__(self) -> int:
        with self.lock:
            return len(self._records)

    def window(self, start: datetime | None, end: datetime | None) -> tuple[int, int]:
        """Index bounds of requests with start <= requested_datetime <= end (None: open end)."""
        with self.lock:
            lo = 0 if start is None else bisect.bisect_left(self._keys, start.timestamp())
            hi = (
                len(self._keys) if end is None else bisect.bisect_right(self._keys, end.timestamp())
            )
            return lo, hi

    def iter_window(
        self, start: datetime | None, end: datetime | None, descending: bool
    ) -> Iterator[StoredRequest]:
        """Requests in the window, newest first when *descending*. Hold `lock` while iterating."""
        lo, hi = self.window(start, end)
        records = self._records
        if descending:
            for index in range(hi - 1, lo - 1, -1):
                yield records[index]
        else:
            for index in range(lo, hi):
                yield records[index]

    def reserve_ids(self, count: int) -> int:
        """Reserve *count* consecutive ids; returns the first."""
        with self.lock:
            first = self._next_id
            self._next_id += count
            return first

    def count(self, origin: str | None = None) -> int:
        """How many requests are stored (only those of one origin, if given)."""
        with self.lock:
            if origin is None:
                return len(self._records)
            return sum(1 for r in self._records if r.origin == origin)

    # -- tokens ------------------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        """Remember a token handed out by POST."""
        with self.lock:
            self._tokens[record.token] = record

    def look_up_token(self, token: str, now: datetime) -> TokenRecord | None:
        """Count one look-up of *token* and update whether it has resolved; None if unknown."""
        with self.lock:
            record = self._tokens.get(token)
            if record is None:
                return None
            record.lookups += 1
            if not record.resolved and now >= record.ready_at:
                record.resolved = record.lookups > record.pending_lookups
            return attrs.evolve(record)

    def tokens(self) -> list[TokenRecord]:
        """Every token handed out (copies)."""
        with self.lock:
            return [attrs.evolve(t) for t in self._tokens.values()]

    # -- generation --------------------------------------------------------------------------

    def next_generation_rng(self) -> random.Random:
        """A seeded random stream for the next `generate_requests` call."""
        with self.lock:
            self._generations += 1
            return random.Random(f"{self.seed}/generate/{self._generations}")  # noqa: S311

    def __repr__(self) -> str:
        return (
            f"CityStore(seed={self.seed}, services={len(self._services)}, "
            f"requests={len(self._records)})"
        )


def utc_seconds(value: datetime) -> datetime:
    """*value* in UTC without microseconds (the wire format has whole seconds)."""
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(timezone.utc).replace(microsecond=0)


def plus(value: datetime, seconds: float | None) -> datetime | None:
    """*value* + *seconds*, or None when *seconds* is None."""
    return None if seconds is None else value + timedelta(seconds=seconds)
