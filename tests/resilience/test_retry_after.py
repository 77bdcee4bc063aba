"""Parsing the Retry-After header (RFC 9110 §10.2.3)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from civic311._resilience import parse_retry_after

NOW = datetime(1994, 11, 6, 8, 49, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("0", 0.0, id="zero"),
        pytest.param("3", 3.0, id="seconds"),
        pytest.param("  120 ", 120.0, id="seconds-with-whitespace"),
        pytest.param("+7", 7.0, id="explicit-plus"),
        pytest.param("1.5", 1.5, id="decimal"),
        pytest.param(".25", 0.25, id="decimal-no-leading-digit"),
        pytest.param("2.", 2.0, id="decimal-trailing-dot"),
        pytest.param("-5", 0.0, id="negative-is-now"),
        pytest.param("-0.5", 0.0, id="negative-decimal-is-now"),
        pytest.param("86400000", 86400000.0, id="huge-returned-as-is"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT", 37.0, id="imf-fixdate"),
        pytest.param("Sunday, 06-Nov-94 08:49:37 GMT", 37.0, id="rfc850"),
        pytest.param("Sun Nov  6 08:49:37 1994", 37.0, id="asctime"),
        pytest.param("Sun, 06 Nov 1994 09:49:37 +0100", 37.0, id="numeric-zone"),
        pytest.param("Sun, 06 Nov 1994 08:00:00 GMT", 0.0, id="past-date-is-now"),
        pytest.param("Sun, 06 Nov 1994 08:49:00 GMT", 0.0, id="date-equal-to-now"),
    ],
)
def test_parses_valid_values(value: str, expected: float) -> None:
    """Delay-seconds and all three HTTP-date formats become seconds from now, never negative."""
    assert parse_retry_after(value, NOW) == pytest.approx(expected)


def test_far_future_date_is_returned_as_is() -> None:
    """A date centuries away is a huge delay, returned unclamped (decide() clamps it)."""
    result = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW)
    assert result is not None
    assert result > 2.5e11


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="absent"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("soon", id="word"),
        pytest.param("1e3", id="exponent"),
        pytest.param("inf", id="inf"),
        pytest.param("nan", id="nan"),
        pytest.param("0x10", id="hex"),
        pytest.param("1,5", id="comma-decimal"),
        pytest.param("10 seconds", id="units"),
        pytest.param("Sun, 32 Nov 1994 08:49:37 GMT", id="impossible-day"),
        pytest.param("Sun, 06 Nov 99999 08:49:37 GMT", id="year-out-of-range"),
        pytest.param("Sun, 06 Foo 1994 08:49:37 GMT", id="bad-month"),
        pytest.param("\x00\xff", id="binary"),
        pytest.param("\u0663", id="non-ascii-digit"),
    ],
)
def test_garbage_is_none(value: str | None) -> None:
    """Absent, empty or unreadable values give None instead of raising."""
    assert parse_retry_after(value, NOW) is None


def test_naive_now_is_taken_as_utc() -> None:
    """A naive `now` is read as UTC, like the GMT of HTTP dates."""
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", naive) == pytest.approx(37.0)


def test_now_in_another_zone() -> None:
    """A `now` in another timezone is compared as the same instant."""
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", plus_two) == pytest.approx(37.0)


def test_overlong_digit_run_is_infinite() -> None:
    """Delay-seconds too long for a float is an unbounded delay, which decide() clamps."""
    assert parse_retry_after("9" * 400, NOW) == float("inf")
