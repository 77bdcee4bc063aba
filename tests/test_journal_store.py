"""The journal's storage contract (`civic311._journal.store.JournalStore`), store by store.

Every test takes the ``store`` fixture, so a second store (PostgreSQL, issue 15) runs the same
contract by adding itself to the fixture's params: same semantics on every store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from civic311._journal.sqlite import SQLiteStore
from civic311._journal.store import (
    JournalStore,
    NewRow,
    Owner,
    StoredObservation,
    StoredReceipt,
    forget_token,
    new_token,
)
from civic311.errors import DuplicateKeyError, InvalidRequestError

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
A, B = "https://a.example/v2", "https://b.example/v2"
FAR = Owner("another-host.example", 4242)


def alive(owner: Owner, token: str) -> bool | None:
    return owner.alive(token)


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalStore]:
    """A fresh, migrated store of each kind."""
    opened = SQLiteStore(tmp_path / "journal.sqlite")
    try:
        yield opened
    finally:
        opened.close()


def row(key: str | None = None, scope: str = A, **extra: object) -> NewRow:
    request = json.dumps({"service_code": "001", "address_id": key or "x"})
    return NewRow(
        scope=scope,
        service_code="001",
        request_json=request,
        at=T0,
        key=key,
        **extra,  # type: ignore[arg-type]
    )


def claim(store: JournalStore, row_id: int, token: str, owner: Owner, at: datetime = T0) -> str:
    return store.claim(
        row_id,
        token=token,
        owner=owner,
        at=at,
        states=("pending", "queued", "uncertain"),
        stale_after=60,
        alive=alive,
    ).outcome


def test_the_store_is_a_journal_store_at_the_newest_schema(store: JournalStore) -> None:
    """The store satisfies the protocol and opens migrated to the newest version."""
    from civic311.ledger import SCHEMA_VERSION

    assert isinstance(store, JournalStore)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.location


def test_insert_is_get_or_create_per_scope_and_key(store: JournalStore) -> None:
    """A taken (scope, key) raises DuplicateKeyError, or with if_absent returns the row;
    the same key in another scope is another row; rows without a key never collide."""
    first, created = store.insert(row("k"))
    assert created
    with pytest.raises(DuplicateKeyError) as caught:
        store.insert(row("k"))
    assert caught.value.existing == first
    assert store.insert(row("k"), if_absent=True) == (first, False)
    other, created = store.insert(row("k", scope=B))
    assert created
    assert other != first
    assert store.insert(row())[0] != store.insert(row())[0]
    found = store.find(scope=B, key="k")
    assert found is not None
    assert found.id == other
    assert store.find(scope=None, key="k") is not None
    assert store.find(scope=A, key="nope") is None
    assert store.get(10_000) is None


def test_a_row_born_claimed_is_claimed_in_the_same_transaction(store: JournalStore) -> None:
    """insert(claim=…) stores the claim with the row: no other run can take it in between."""
    token = new_token()
    try:
        row_id, _ = store.insert(row("k", local_id="L1"), claim=(token, Owner.me()))
        stored = store.get(row_id)
        assert stored is not None
        assert (stored.claim_token, stored.claim_owner) == (token, str(Owner.me()))
        assert store.find(scope=None, local_id="L1") == stored
        assert claim(store, row_id, new_token(), Owner.me()) == "held"
    finally:
        forget_token(token)


def test_claims_are_exclusive_until_the_owner_dies_or_goes_quiet(store: JournalStore) -> None:
    """A live owner's claim holds; a dead process's is taken over; another host's lasts as
    long as its heartbeat is younger than stale_after."""
    row_id, _ = store.insert(row("k"))
    assert claim(store, row_id, "far", FAR) == "claimed"
    assert claim(store, row_id, "near", Owner.me(), T0 + timedelta(seconds=59)) == "held"
    assert store.heartbeat("far", T0 + timedelta(seconds=50)) == 1
    assert claim(store, row_id, "near", Owner.me(), T0 + timedelta(seconds=109)) == "held"
    token = new_token()
    try:
        assert claim(store, row_id, token, Owner.me(), T0 + timedelta(seconds=111)) == "claimed"
        # this process's claim, its token no longer in use (abandoned): taken over at once
        forget_token(token)
        assert claim(store, row_id, "again", Owner.me()) == "claimed"
    finally:
        forget_token(token)


def test_only_the_claims_holder_moves_the_row(store: JournalStore) -> None:
    """mark_in_flight and record_outcome need the claim's token (None: an unclaimed row);
    recording the outcome releases the claim; a settled row cannot be claimed or re-sent."""
    row_id, _ = store.insert(row("k"))
    assert claim(store, row_id, "t1", FAR) == "claimed"
    assert not store.mark_in_flight(row_id, token="t2", at=T0)
    assert not store.mark_in_flight(row_id, token=None, at=T0)
    assert store.mark_in_flight(row_id, token="t1", at=T0)
    flying = store.get(row_id)
    assert flying is not None
    assert flying.in_flight
    assert flying.tries == 1
    assert not store.record_outcome(row_id, token=None, state="sent", at=T0)
    receipt = StoredReceipt(service_request_id="42", service_notice="thanks")
    assert store.record_outcome(row_id, token="t1", state="sent", at=T0, receipt=receipt)
    done = store.get(row_id)
    assert done is not None
    assert (done.state, done.claim_token, done.receipt) == ("sent", None, receipt)
    assert store.claim(
        row_id, token="t3", owner=FAR, at=T0, states=("pending",), stale_after=60, alive=alive
    ).outcome == "settled"  # fmt: skip
    with pytest.raises(InvalidRequestError):
        store.mark_in_flight(row_id, token=None, at=T0)
    assert store.held_ids(A) == frozenset({"42"})
    assert store.held_ids(B) == frozenset()


def test_release_drops_only_its_own_claim(store: JournalStore) -> None:
    """release(token) frees the row for the next run and changes nothing else."""
    row_id, _ = store.insert(row("k"))
    assert claim(store, row_id, "t1", FAR) == "claimed"
    assert not store.release(row_id, "other")
    assert store.release(row_id, "t1")
    released = store.get(row_id)
    assert released is not None
    assert (released.state, released.claim_token) == ("pending", None)


def test_a_legacy_row_without_a_scope_is_adopted_by_its_first_claimant(
    store: JournalStore,
) -> None:
    """A row with an empty scope (an old outbox entry) takes the claimant's adopt_scope."""
    row_id, _ = store.insert(row(scope=""))
    store.claim(
        row_id,
        token="t",
        owner=FAR,
        at=T0,
        states=("pending",),
        stale_after=60,
        alive=alive,
        adopt_scope=B,
    )
    adopted = store.get(row_id)
    assert adopted is not None
    assert adopted.scope == B


def test_rows_filter_by_scope_state_flight_id_and_token(store: JournalStore) -> None:
    """rows() filters by every argument given, oldest first."""
    ids = [store.insert(row(f"k{n}", scope=A if n < 3 else B))[0] for n in range(4)]
    assert claim(store, ids[0], "t", FAR) == "claimed"
    store.mark_in_flight(ids[0], token="t", at=T0)
    store.record_outcome(
        ids[1], token=None, state="sent", at=T0, receipt=StoredReceipt(token="tok")
    )
    assert [r.id for r in store.rows(scope=A)] == ids[:3]
    assert [r.id for r in store.rows(states=["sent"])] == [ids[1]]
    assert [r.id for r in store.rows(in_flight=True)] == [ids[0]]
    assert [r.id for r in store.rows(token="tok")] == [ids[1]]
    assert store.record_token_resolved(scope=B, token="tok", service_request_id="9", at=T0) == 0
    assert store.record_token_resolved(scope=A, token="tok", service_request_id="9", at=T0) == 1
    assert [r.id for r in store.rows(service_request_id="9")] == [ids[1]]


def test_statuses_are_per_scope_and_stored_only_when_they_change(store: JournalStore) -> None:
    """record_status keeps changes only, per (scope, id); observations filter and pick the
    latest of each."""

    def seen(scope: str, status: str, hours: int) -> StoredObservation:
        return StoredObservation(
            scope=scope,
            service_request_id="42",
            status=status,
            status_notes=None,
            updated_datetime=T0,
            observed_at=T0 + timedelta(hours=hours),
        )

    assert store.record_status(seen(A, "open", 0))
    assert not store.record_status(seen(A, "open", 1))
    assert store.record_status(seen(B, "open", 1))  # another city's "42"
    assert store.record_status(seen(A, "closed", 2))
    assert [o.status for o in store.observations(scope=A)] == ["open", "closed"]
    assert [o.status for o in store.observations(scope=B)] == ["open"]
    latest = store.observations(latest_only=True)
    assert [(o.scope, o.status) for o in latest] == [(A, "closed"), (B, "open")]
    later = store.observations(since=T0 + timedelta(hours=1))
    assert [(o.scope, o.status) for o in later] == [(A, "closed")]


def test_one_claim_wins_among_many_threads(store: JournalStore) -> None:
    """16 threads claim one row at once: exactly one gets it."""
    row_id, _ = store.insert(row("k"))
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def contend(n: int) -> None:
        barrier.wait(timeout=30)
        outcomes.append(claim(store, row_id, f"t{n}", FAR))

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["claimed"] + ["held"] * 15
