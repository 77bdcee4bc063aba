"""`civic311._record.Record`, the plain base of internal records that replaced attrs (issue 13).

The records keep what their attrs classes gave: value equality and hashing (fields marked as
uncompared left out), a repr that hides secrets and callables, immutability, `evolve`, pickling.
"""

from __future__ import annotations

import pickle

import pytest

from civic311._protocol import Call, Collected, PageRule, Settings, Sleep
from civic311._resilience.pool import Endpoint
from civic311._resilience.retry import Decision


def _parse(decoded: object) -> None:
    """A parse function for calls (module level, so that it pickles)."""
    del decoded


def test_equal_by_value_and_hashed_alike() -> None:
    """Two records with equal fields are equal and hash alike; another value differs."""
    assert Sleep(0.5) == Sleep(0.5)
    assert hash(Sleep(0.5)) == hash(Sleep(0.5))
    assert Sleep(0.5) != Sleep(1.0)
    assert Decision("retry", 1.0, "status 503") == Decision("retry", 1.0, "status 503")
    assert PageRule() == PageRule(style="none")


def test_different_record_types_are_never_equal() -> None:
    """Records of different classes never compare equal, whatever their fields."""
    assert Sleep(1.0) != Decision("retry", 1.0, "x")
    assert Sleep(1.0) != (1.0,)


def test_uncompared_field_is_left_out_of_equality_and_hash() -> None:
    """An endpoint handle equals the same endpoint with a probe ticket (probe is uncompared)."""
    assert Endpoint(0, "https://a.example", probe=3) == Endpoint(0, "https://a.example")
    assert hash(Endpoint(0, "https://a.example", probe=3)) == hash(Endpoint(0, "https://a.example"))


def test_repr_hides_the_api_key_and_callables() -> None:
    """The repr shows fields by name, never the api_key nor a call's parse function or files."""
    settings = Settings(jurisdiction_id="city.gov", api_key="SECRET-KEY-123")
    assert "SECRET-KEY-123" not in repr(settings)
    assert "jurisdiction_id='city.gov'" in repr(settings)
    call = Call("list_services", "GET", "services", _parse)
    assert "_parse" not in repr(call)
    assert repr(Sleep(2.0)) == "Sleep(seconds=2.0)"


def test_records_are_immutable() -> None:
    """Setting or deleting a field raises AttributeError, as a frozen attrs class did."""
    sleep = Sleep(1.0)
    with pytest.raises(AttributeError, match="immutable"):
        sleep.seconds = 2.0
    with pytest.raises(AttributeError, match="immutable"):
        del sleep.seconds


def test_evolve_copies_with_changes() -> None:
    """`evolve` returns a new record with the changed fields, leaving the original alone."""
    call = Call("list_requests", "GET", "requests", _parse, params=(("a", "1"),))
    changed = call.evolve(params=(("b", "2"),))
    assert changed.params == (("b", "2"),)
    assert call.params == (("a", "1"),)
    assert changed.operation == "list_requests"


def test_records_pickle() -> None:
    """A record survives a pickle round trip (rebuilt through its constructor)."""
    for record in (
        Sleep(1.5),
        Decision("stop", 0.0, "ok"),
        Collected(rows=[1, 2], pages=1, total=2),
        Call("list_services", "GET", "services", _parse),
    ):
        assert pickle.loads(pickle.dumps(record)) == record
