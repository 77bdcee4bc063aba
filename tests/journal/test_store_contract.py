"""The `JournalStore` contract, one suite run on both stores (SQLite file, PostgreSQL schema).

Every test takes the ``store`` fixture (or ``journal_target``), whose params are the stores: a
third store joins by adding itself to ``journal_target`` in conftest.py. The second half is the
contract as main's journal branch wrote it for SQLite alone (tests/test_journal_store.py, moved
here whole so that both stores run it)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from civic311._journal import open_store
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

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
ME = Owner("here", 1)
SCOPE = "https://a.example/open311/v2"
OTHER = "https://b.example/open311/v2"


def row(key: str | None = "k1", scope: str = SCOPE, **extra: object) -> NewRow:
    return NewRow(scope, "001", '{"service_code":"001"}', T0, key=key, **extra)  # type: ignore[arg-type]


def claim(store: JournalStore, row_id: int, token: str, alive: bool | None = True, **kw: object):  # type: ignore[no-untyped-def]
    return store.claim(
        row_id,
        token=token,
        owner=ME,
        at=kw.pop("at", T0),  # type: ignore[arg-type]
        states=kw.pop("states", ("pending", "queued", "uncertain")),  # type: ignore[arg-type]
        stale_after=60,
        alive=lambda owner, tok: alive,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(journal_target: str):  # type: ignore[no-untyped-def]
    """A fresh, migrated store of each kind."""
    opened = open_store(journal_target)
    try:
        yield opened
    finally:
        opened.close()


def test_opening_creates_the_newest_schema_and_reopening_keeps_it(journal_target: str) -> None:
    """A fresh store is at schema version 3; opening it again changes nothing."""
    first = open_store(journal_target)
    try:
        assert first.schema_version() == 3
        first.insert(row())
    finally:
        first.close()
    again = open_store(journal_target)
    try:
        assert again.schema_version() == 3
        assert [r.key for r in again.rows()] == ["k1"]
    finally:
        again.close()


def test_insert_is_get_or_create_per_scope(store: JournalStore) -> None:
    """A key is unique per scope: if_absent returns the row, otherwise DuplicateKeyError."""
    first, created = store.insert(row())
    assert created
    assert store.insert(row(), if_absent=True) == (first, False)
    with pytest.raises(DuplicateKeyError) as caught:
        store.insert(row())
    assert caught.value.existing == first
    other, created = store.insert(row(scope=OTHER))
    assert created
    assert other != first
    found = store.find(scope=OTHER, key="k1")
    assert found is not None
    assert found.id == other
    assert store.find(scope=None, key="k1").id == first  # type: ignore[union-attr]


def test_racing_inserts_of_one_key_create_one_row(store: JournalStore) -> None:
    """Eight threads inserting the same key at once: one row, one 'created'."""
    results: list[tuple[int, bool]] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait(timeout=10)
        results.append(store.insert(row("same"), if_absent=True))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 8
    assert len({r[0] for r in results}) == 1
    assert sum(created for _, created in results) == 1


def test_a_duplicate_local_id_is_refused(store: JournalStore) -> None:
    """Two rows may not share a local_id (an outbox entry's id): DuplicateKeyError naming the
    local_id and the row holding it, never a raw sqlite3/psycopg error; nothing is stored."""
    first, _ = store.insert(row(None, local_id="L1"))
    with pytest.raises(DuplicateKeyError) as caught:
        store.insert(row(None, local_id="L1", state="queued"))
    error = caught.value
    assert (error.field, error.key, error.existing) == ("local_id", "L1", first)
    assert str(error) == f"local_id: 'L1' is already recorded as submission #{first}"
    assert [r.id for r in store.rows()] == [first]
    # The same local_id with a key: the key is free, the local_id is not.
    with pytest.raises(DuplicateKeyError) as again:
        store.insert(row("fresh", local_id="L1"))
    assert again.value.field == "local_id"
    assert store.find(scope=None, key="fresh") is None


def test_a_row_born_claimed_is_held_by_its_token(store: JournalStore) -> None:
    """insert(claim=) creates the row claimed; a live other run is told it is held."""
    row_id, _ = store.insert(row(), claim=("tok-a", ME))
    got = store.get(row_id)
    assert got is not None
    assert got.claim_token == "tok-a"
    assert got.claim_owner == "here:1"
    held = claim(store, row_id, "tok-b", alive=True)
    assert held.outcome == "held"
    assert held.holder == "here:1"


def test_claims_of_dead_and_stale_owners_are_taken_over(store: JournalStore) -> None:
    """A dead owner's claim is taken; an unknown owner's only once its heartbeat is stale."""
    row_id, _ = store.insert(row(), claim=("tok-a", ME))
    assert claim(store, row_id, "tok-b", alive=None, at=T0 + timedelta(seconds=30)).outcome == (
        "held"
    )
    taken = claim(store, row_id, "tok-b", alive=None, at=T0 + timedelta(seconds=61))
    assert taken.outcome == "claimed"
    assert taken.row is not None
    assert taken.row.claim_token == "tok-a"
    assert claim(store, row_id, "tok-c", alive=False).outcome == "claimed"
    assert store.get(row_id).claim_token == "tok-c"  # type: ignore[union-attr]


def test_claim_reports_settled_and_missing_rows(store: JournalStore) -> None:
    """A row in none of the states asked for is 'settled'; an unknown id is 'missing'."""
    row_id, _ = store.insert(row(state="sent"))
    assert claim(store, row_id, "t").outcome == "settled"
    assert claim(store, 9999, "t").outcome == "missing"


def test_a_legacy_row_is_adopted_by_its_first_claimer(store: JournalStore) -> None:
    """A row with no scope takes the claimer's adopt_scope."""
    row_id, _ = store.insert(row(None, scope="", local_id="old"))
    assert claim(store, row_id, "t", adopt_scope=SCOPE).outcome == "claimed"
    assert store.get(row_id).scope == SCOPE  # type: ignore[union-attr]


def test_racing_claims_have_exactly_one_winner(store: JournalStore) -> None:
    """Sixteen threads claim one row with live owners: exactly one 'claimed'."""
    row_id, _ = store.insert(row())
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def go(n: int) -> None:
        barrier.wait(timeout=10)
        outcomes.append(claim(store, row_id, f"tok-{n}", alive=True).outcome)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert Counter(outcomes) == {"claimed": 1, "held": 15}


def test_only_the_claim_holder_marks_in_flight_and_records(store: JournalStore) -> None:
    """mark_in_flight and record_outcome need the claim's token; the outcome releases it."""
    row_id, _ = store.insert(row(), claim=("tok", ME))
    assert not store.mark_in_flight(row_id, token="other", at=T0)
    assert store.mark_in_flight(row_id, token="tok", at=T0 + timedelta(seconds=1))
    flying = store.get(row_id)
    assert flying is not None
    assert flying.in_flight
    assert flying.tries == 1
    assert store.rows(in_flight=True)[0].id == row_id
    receipt = StoredReceipt(service_request_id="42", service_notice="thanks")
    assert not store.record_outcome(row_id, token="other", state="sent", at=T0, receipt=receipt)
    assert store.record_outcome(row_id, token="tok", state="sent", at=T0, receipt=receipt)
    done = store.get(row_id)
    assert done is not None
    assert done.state == "sent"
    assert done.claim_token is None
    assert done.receipt == receipt
    with pytest.raises(InvalidRequestError):
        store.mark_in_flight(row_id, token=None, at=T0)
    with pytest.raises(KeyError):
        store.record_outcome(9999, token=None, state="sent", at=T0)


def test_a_later_receipt_without_an_id_keeps_the_stored_id(store: JournalStore) -> None:
    """Once stored, a service_request_id survives a receipt that carries none."""
    row_id, _ = store.insert(row(receipt=StoredReceipt(service_request_id="7"), state="sent"))
    store.record_outcome(row_id, token=None, state="sent", at=T0, receipt=StoredReceipt(token="tk"))
    got = store.get(row_id)
    assert got is not None
    assert got.receipt is not None
    assert (got.receipt.service_request_id, got.receipt.token) == ("7", "tk")


def test_heartbeat_and_release_touch_only_their_token(store: JournalStore) -> None:
    """heartbeat refreshes the rows of one token; release drops one claim."""
    a, _ = store.insert(row("a"), claim=("tok", ME))
    b, _ = store.insert(row("b"), claim=("tok", ME))
    store.insert(row("c"), claim=("else", ME))
    assert store.heartbeat("tok", T0 + timedelta(seconds=5)) == 2
    assert store.get(a).heartbeat_at == T0 + timedelta(seconds=5)  # type: ignore[union-attr]
    assert store.release(a, "tok")
    assert not store.release(a, "tok")
    assert store.get(a).claim_token is None  # type: ignore[union-attr]
    assert store.get(b).claim_token == "tok"  # type: ignore[union-attr]


def test_rows_filter_and_held_ids_are_per_scope(store: JournalStore) -> None:
    """rows() filters by scope, state, id and token; held_ids lists one scope's ids."""
    store.insert(row("a", receipt=StoredReceipt(service_request_id="1"), state="sent"))
    store.insert(row("b", receipt=StoredReceipt(token="T"), state="sent"))
    store.insert(row("c", state="queued"))
    store.insert(row("a", scope=OTHER, receipt=StoredReceipt(service_request_id="9"), state="sent"))
    assert [r.key for r in store.rows(scope=SCOPE)] == ["a", "b", "c"]
    assert [r.key for r in store.rows(states=["queued"])] == ["c"]
    assert store.rows(states=[]) == []
    assert [r.scope for r in store.rows(service_request_id="9")] == [OTHER]
    assert [r.key for r in store.rows(token="T")] == ["b"]
    assert store.held_ids(SCOPE) == frozenset({"1"})
    assert store.held_ids(OTHER) == frozenset({"9"})


def test_a_token_resolves_to_an_id_in_its_scope(store: JournalStore) -> None:
    """record_token_resolved fills the id on rows of that scope carrying the token."""
    store.insert(row("a", receipt=StoredReceipt(token="T"), state="sent"))
    store.insert(row("a", scope=OTHER, receipt=StoredReceipt(token="T"), state="sent"))
    assert store.record_token_resolved(scope=SCOPE, token="T", service_request_id="5", at=T0) == 1
    got = store.find(scope=SCOPE, key="a")
    assert got is not None
    assert got.receipt is not None
    assert got.receipt.service_request_id == "5"
    assert got.token_resolved_at == T0
    assert store.find(scope=OTHER, key="a").receipt.service_request_id is None  # type: ignore[union-attr]


def observation(
    status: str, minutes: int, sid: str = "42", scope: str = SCOPE
) -> StoredObservation:
    return StoredObservation(
        scope=scope,
        service_request_id=sid,
        status=status,
        status_notes=None,
        updated_datetime=T0,
        observed_at=T0 + timedelta(minutes=minutes),
    )


def test_statuses_are_stored_on_change_per_scope(store: JournalStore) -> None:
    """A repeated observation is not stored; the same id in another scope is its own."""
    assert store.record_status(observation("open", 1))
    assert not store.record_status(observation("open", 2))
    assert store.record_status(observation("closed", 3))
    assert store.record_status(observation("open", 4, scope=OTHER))
    assert store.record_status(observation("open", 5, sid="43"))
    mine = store.observations(scope=SCOPE, service_request_id="42")
    assert [o.status for o in mine] == ["open", "closed"]
    assert mine[0].observed_at == T0 + timedelta(minutes=1)
    assert mine[0].observed_at.tzinfo is not None
    latest = store.observations(scope=SCOPE, latest_only=True)
    assert [(o.service_request_id, o.status) for o in latest] == [("42", "closed"), ("43", "open")]
    since = store.observations(since=T0 + timedelta(minutes=3))
    assert [o.status for o in since] == ["open", "open"]


def test_racing_trackers_store_one_change_once(store: JournalStore) -> None:
    """Eight threads recording the same new status: it is stored once."""
    stored: list[bool] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait(timeout=10)
        stored.append(store.record_status(observation("open", 1)))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(stored) == [False] * 7 + [True]
    assert len(store.observations()) == 1


# --- the contract as the journal branch first wrote it (tests/test_journal_store.py) ---------
# Its own helpers: real owners (this process, a far host) decided by `Owner.alive`.

A, B = SCOPE, OTHER
FAR = Owner("another-host.example", 4242)


def owner_alive(owner: Owner, token: str) -> bool | None:
    return owner.alive(token)


def new_row(key: str | None = None, scope: str = A, **extra: object) -> NewRow:
    request = json.dumps({"service_code": "001", "address_id": key or "x"})
    return NewRow(
        scope=scope,
        service_code="001",
        request_json=request,
        at=T0,
        key=key,
        **extra,  # type: ignore[arg-type]
    )


def claim_as(store: JournalStore, row_id: int, token: str, owner: Owner, at: datetime = T0) -> str:
    return store.claim(
        row_id,
        token=token,
        owner=owner,
        at=at,
        states=("pending", "queued", "uncertain"),
        stale_after=60,
        alive=owner_alive,
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
    first, created = store.insert(new_row("k"))
    assert created
    with pytest.raises(DuplicateKeyError) as caught:
        store.insert(new_row("k"))
    assert caught.value.existing == first
    assert store.insert(new_row("k"), if_absent=True) == (first, False)
    other, created = store.insert(new_row("k", scope=B))
    assert created
    assert other != first
    assert store.insert(new_row())[0] != store.insert(new_row())[0]
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
        row_id, _ = store.insert(new_row("k", local_id="L1"), claim=(token, Owner.me()))
        stored = store.get(row_id)
        assert stored is not None
        assert (stored.claim_token, stored.claim_owner) == (token, str(Owner.me()))
        assert store.find(scope=None, local_id="L1") == stored
        assert claim_as(store, row_id, new_token(), Owner.me()) == "held"
    finally:
        forget_token(token)


def test_claims_are_exclusive_until_the_owner_dies_or_goes_quiet(store: JournalStore) -> None:
    """A live owner's claim holds; a dead process's is taken over; another host's lasts as
    long as its heartbeat is younger than stale_after."""
    row_id, _ = store.insert(new_row("k"))
    assert claim_as(store, row_id, "far", FAR) == "claimed"
    assert claim_as(store, row_id, "near", Owner.me(), T0 + timedelta(seconds=59)) == "held"
    assert store.heartbeat("far", T0 + timedelta(seconds=50)) == 1
    assert claim_as(store, row_id, "near", Owner.me(), T0 + timedelta(seconds=109)) == "held"
    token = new_token()
    try:
        assert claim_as(store, row_id, token, Owner.me(), T0 + timedelta(seconds=111)) == "claimed"
        # this process's claim, its token no longer in use (abandoned): taken over at once
        forget_token(token)
        assert claim_as(store, row_id, "again", Owner.me()) == "claimed"
    finally:
        forget_token(token)


def test_only_the_claims_holder_moves_the_row(store: JournalStore) -> None:
    """mark_in_flight and record_outcome need the claim's token (None: an unclaimed row);
    recording the outcome releases the claim; a settled row cannot be claimed or re-sent."""
    row_id, _ = store.insert(new_row("k"))
    assert claim_as(store, row_id, "t1", FAR) == "claimed"
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
        row_id, token="t3", owner=FAR, at=T0, states=("pending",), stale_after=60, alive=owner_alive
    ).outcome == "settled"  # fmt: skip
    with pytest.raises(InvalidRequestError):
        store.mark_in_flight(row_id, token=None, at=T0)
    assert store.held_ids(A) == frozenset({"42"})
    assert store.held_ids(B) == frozenset()


def test_release_drops_only_its_own_claim(store: JournalStore) -> None:
    """release(token) frees the row for the next run and changes nothing else."""
    row_id, _ = store.insert(new_row("k"))
    assert claim_as(store, row_id, "t1", FAR) == "claimed"
    assert not store.release(row_id, "other")
    assert store.release(row_id, "t1")
    released = store.get(row_id)
    assert released is not None
    assert (released.state, released.claim_token) == ("pending", None)


def test_a_legacy_row_without_a_scope_is_adopted_by_its_first_claimant(
    store: JournalStore,
) -> None:
    """A row with an empty scope (an old outbox entry) takes the claimant's adopt_scope."""
    row_id, _ = store.insert(new_row(scope=""))
    store.claim(
        row_id,
        token="t",
        owner=FAR,
        at=T0,
        states=("pending",),
        stale_after=60,
        alive=owner_alive,
        adopt_scope=B,
    )
    adopted = store.get(row_id)
    assert adopted is not None
    assert adopted.scope == B


def test_rows_filter_by_scope_state_flight_id_and_token(store: JournalStore) -> None:
    """rows() filters by every argument given, oldest first."""
    ids = [store.insert(new_row(f"k{n}", scope=A if n < 3 else B))[0] for n in range(4)]
    assert claim_as(store, ids[0], "t", FAR) == "claimed"
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
    row_id, _ = store.insert(new_row("k"))
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def contend(n: int) -> None:
        barrier.wait(timeout=30)
        outcomes.append(claim_as(store, row_id, f"t{n}", FAR))

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["claimed"] + ["held"] * 15


def test_a_bulk_rows_file_row_number_is_kept(store: JournalStore) -> None:
    """source_row (the row's number in the bulk file) comes back as stored, None when not given."""
    numbered, _ = store.insert(new_row("k", source_row=17))
    plain, _ = store.insert(new_row("j"))
    assert store.get(numbered).source_row == 17  # type: ignore[union-attr]
    assert store.get(plain).source_row is None  # type: ignore[union-attr]
    assert [r.source_row for r in store.rows(scope=A)] == [17, None]
