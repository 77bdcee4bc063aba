"""Pure resilience decisions: the retry policy and the endpoint pool.

Nothing in this package sends a request, sleeps, starts a thread or reads a clock; time and
randomness are passed in. The clients execute these decisions in one plain loop and report back.

- `civic311._resilience.retry`: `RetryPolicy`, `parse_retry_after`, outcome classification and
  the pure `RetryPolicy.decide` (the retry/reconcile/stop table).
- `civic311._resilience._tenacity`: the one small adapter that runs the same decisions under
  tenacity (imported on its own; the clients do not need it).
- `civic311._resilience.pool`: `EndpointPool`, the per-endpoint health state machine with circuit
  breaking (up → degraded → down → half-open probe), read by users as `EndpointHealth`.
"""

from typing import TYPE_CHECKING, Any

from civic311._resilience.retry import (
    RETRYABLE_STATUSES,
    Action,
    Decision,
    Outcome,
    RetryPolicy,
    backoff,
    classify_status,
    parse_retry_after,
)

__all__ = [
    "FORMATS",
    "RETRYABLE_STATUSES",
    "Action",
    "Decision",
    "Endpoint",
    "EndpointHealth",
    "EndpointPool",
    "EndpointState",
    "Outcome",
    "RetryPolicy",
    "backoff",
    "classify_status",
    "parse_retry_after",
]

if TYPE_CHECKING:
    from civic311._resilience.pool import (
        FORMATS,
        Endpoint,
        EndpointHealth,
        EndpointPool,
        EndpointState,
    )

#: The pool's names load with the pool, when a client is built (issue 13: not at import).
_FROM_POOL = frozenset({"FORMATS", "Endpoint", "EndpointHealth", "EndpointPool", "EndpointState"})

if not TYPE_CHECKING:  # for the interpreter; type checkers see the imports above

    def __getattr__(name: str) -> Any:
        if name in _FROM_POOL:
            from civic311._resilience import pool

            return getattr(pool, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
