"""RetryPolicy validation and the exponential backoff with full jitter."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civic311._resilience import RetryPolicy, backoff


def test_defaults_are_polite() -> None:
    """The default policy makes at most 4 attempts in 30 s with waits capped at 8 s."""
    policy = RetryPolicy()
    assert (policy.attempts, policy.deadline) == (4, 30.0)
    assert (policy.initial_wait, policy.max_wait, policy.exp_base) == (0.5, 8.0, 2.0)
    assert policy.jitter is True
    assert policy.max_retry_after == 60.0


def test_no_wait_never_waits() -> None:
    """RetryPolicy.no_wait keeps the attempts but zeroes every wait, Retry-After included."""
    policy = RetryPolicy.no_wait(attempts=7)
    assert policy.attempts == 7
    assert (policy.initial_wait, policy.max_wait, policy.max_retry_after) == (0.0, 0.0, 0.0)
    assert backoff(policy, 5, random.Random(0)) == 0.0


def test_policy_is_frozen() -> None:
    """A policy is an immutable value."""
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.attempts = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"attempts": 0}, "attempts", id="attempts-zero"),
        pytest.param({"attempts": -1}, "attempts", id="attempts-negative"),
        pytest.param({"attempts": 2.5}, "attempts", id="attempts-float"),
        pytest.param({"attempts": True}, "attempts", id="attempts-bool"),
        pytest.param({"deadline": 0}, "deadline", id="deadline-zero"),
        pytest.param({"deadline": -1}, "deadline", id="deadline-negative"),
        pytest.param({"deadline": math.nan}, "deadline", id="deadline-nan"),
        pytest.param({"initial_wait": -0.1}, "initial_wait", id="initial-negative"),
        pytest.param({"max_wait": -1}, "max_wait", id="max-negative"),
        pytest.param({"initial_wait": 9, "max_wait": 8}, "max_wait", id="initial-above-max"),
        pytest.param({"exp_base": 0.5}, "exp_base", id="shrinking-base"),
        pytest.param({"max_retry_after": -1}, "max_retry_after", id="retry-after-negative"),
        pytest.param({"max_wait": math.inf}, "max_wait", id="max-wait-infinite"),
        pytest.param({"initial_wait": math.nan}, "initial_wait", id="initial-nan"),
        pytest.param(
            {"max_retry_after": math.inf}, "max_retry_after", id="retry-after-cap-infinite"
        ),
        pytest.param({"jitter": "yes"}, "jitter", id="jitter-not-bool"),
    ],
)
def test_invalid_fields_name_the_field(kwargs: dict[str, object], field: str) -> None:
    """An out-of-range field raises ValueError (or TypeError for a wrong type) naming it."""
    with pytest.raises((ValueError, TypeError), match=field):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_infinite_deadline_is_allowed() -> None:
    """math.inf disables the deadline."""
    assert RetryPolicy(deadline=math.inf).deadline == math.inf


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (5000, 8.0)],
)
def test_backoff_without_jitter_doubles_up_to_the_cap(attempt: int, expected: float) -> None:
    """Without jitter the wait is min(max_wait, initial_wait * exp_base ** (attempt - 1))."""
    assert backoff(RetryPolicy(jitter=False), attempt, random.Random(0)) == expected


def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    """Jitter comes only from the injected rng, so equal seeds give equal waits."""
    policy = RetryPolicy()
    assert [backoff(policy, n, random.Random(42)) for n in range(1, 6)] == [
        backoff(policy, n, random.Random(42)) for n in range(1, 6)
    ]


def test_full_jitter_spreads_over_the_whole_window() -> None:
    """Full jitter draws from [0, backoff]: both small and near-cap waits occur."""
    rng = random.Random(1)
    waits = [backoff(RetryPolicy(), 4, rng) for _ in range(500)]
    assert min(waits) < 0.5
    assert max(waits) > 3.5
    assert all(0.0 <= w <= 4.0 for w in waits)


policies = st.builds(
    lambda initial, extra, base, jitter: RetryPolicy(
        initial_wait=initial, max_wait=initial + extra, exp_base=base, jitter=jitter
    ),
    initial=st.floats(min_value=0, max_value=100, allow_nan=False),
    extra=st.floats(min_value=0, max_value=1000, allow_nan=False),
    base=st.floats(min_value=1, max_value=10, allow_nan=False),
    jitter=st.booleans(),
)


@given(policy=policies, attempt=st.integers(min_value=1, max_value=10_000), seed=st.integers())
def test_backoff_stays_within_zero_and_max_wait(
    policy: RetryPolicy, attempt: int, seed: int
) -> None:
    """Whatever the policy and attempt, the backoff is within [0, max_wait]."""
    wait = backoff(policy, attempt, random.Random(seed))
    assert 0.0 <= wait <= policy.max_wait
