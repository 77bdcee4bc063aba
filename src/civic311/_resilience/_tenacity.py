"""The one small tenacity adapter: run `RetryPolicy.decide` under `tenacity.Retrying`.

The clients do not use it: their attempt loop (`civic311._client.execution`) is a plain loop
over the same pure decisions, which needs no replayed exceptions and costs less per call. This
adapter is for code that already retries with tenacity and wants civic311's policy (and the
tests that prove a `RetryPolicy` means the same thing under tenacity as in the clients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import tenacity

from civic311._resilience.retry import Decision, RetryPolicy

__all__ = ["TenacityKwargs", "decision_of", "tenacity_kwargs"]

# Where the decision for the current attempt is parked on tenacity's RetryCallState, so that
# ``wait=`` reads what ``retry=`` decided (stamina carries its per-attempt backoff the same way).
_DECISION_KEY = "civic311_decision"


class TenacityKwargs(TypedDict):
    """Keyword arguments for `tenacity.Retrying` / `tenacity.AsyncRetrying`."""

    retry: Callable[[tenacity.RetryCallState], bool]
    wait: Callable[[tenacity.RetryCallState], float]
    stop: Callable[[tenacity.RetryCallState], bool]
    retry_error_callback: Callable[[tenacity.RetryCallState], object]
    reraise: bool


def decision_of(retry_state: tenacity.RetryCallState) -> Decision | None:
    """The `Decision` made for the latest attempt of a tenacity loop, if any.

    After a loop ends on "reconcile" (tenacity re-raises the attempt's exception or returns its
    result), the caller reads the decision here to know it must reconcile rather than fail.
    """
    decision = retry_state.__dict__.get(_DECISION_KEY)
    return decision if isinstance(decision, Decision) else None


def _last_outcome(retry_state: tenacity.RetryCallState) -> object:
    # Giving up ends the loop the way a "stop" decision does: the last attempt's result is
    # returned, or its exception raised, never wrapped in a tenacity.RetryError.
    if retry_state.outcome is None:  # pragma: no cover - tenacity only stops after an attempt
        return None
    return retry_state.outcome.result()


def tenacity_kwargs(
    policy: RetryPolicy,
    decide_fn: Callable[[tenacity.RetryCallState], Decision],
    clock_monotonic: Callable[[], float],
    *,
    started: float | None = None,
) -> TenacityKwargs:
    """Make tenacity execute a `RetryPolicy`: ``Retrying(sleep=clock.sleep, **kwargs)``.

    tenacity asks ``retry=`` first; ours calls ``decide_fn`` (the caller's glue: classify the
    attempt's outcome, then call `RetryPolicy.decide`), parks the `Decision` on the
    `RetryCallState` (read it back with `decision_of`) and answers "retry?" with
    ``decision.action == "retry"``.
    ``wait=`` returns the parked wait. ``stop=`` enforces the attempts and the deadline once
    more with the injected clock, as a guard against a ``decide_fn`` that forgets them (stamina
    stops on attempts *or* time too); when it fires, the parked decision becomes a "stop".

    However the loop ends, it ends like a plain call: the last attempt's result is returned or
    its exception raised (``reraise=True`` and ``retry_error_callback``), never a
    `tenacity.RetryError`. Both the call form, ``Retrying(**kw)(fn)``, and the iterator form,
    ``for attempt in Retrying(**kw): with attempt: ...``, work.

    Args:
        policy: The policy (for the ``stop=`` guard).
        decide_fn: Called once per finished attempt with tenacity's state
            (``retry_state.outcome``, ``retry_state.attempt_number``).
        clock_monotonic: The clock the deadline is measured on (``Clock.monotonic``).
        started: Monotonic time of the first attempt; defaults to ``clock_monotonic()`` now, so
            build the kwargs right before the loop.

    Returns:
        ``retry``, ``wait``, ``stop``, ``retry_error_callback`` and ``reraise`` for tenacity.
    """
    start = clock_monotonic() if started is None else started

    def retry(retry_state: tenacity.RetryCallState) -> bool:
        decision = decide_fn(retry_state)
        retry_state.__dict__[_DECISION_KEY] = decision
        return decision.action == "retry"

    def wait(retry_state: tenacity.RetryCallState) -> float:
        decision = decision_of(retry_state)
        return decision.wait if decision is not None else 0.0

    def stop(retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= policy.attempts:
            reason = "attempts"
        elif clock_monotonic() - start + retry_state.upcoming_sleep > policy.deadline:
            reason = "deadline"
        else:
            return False
        retry_state.__dict__[_DECISION_KEY] = Decision("stop", 0.0, reason)
        return True

    return {
        "retry": retry,
        "wait": wait,
        "stop": stop,
        "retry_error_callback": _last_outcome,
        "reraise": True,
    }
