"""Pure resilience decisions: the retry policy and the endpoint pool.

Nothing in this package sends a request, sleeps, starts a thread or reads a clock; time and
randomness are passed in. The clients execute these decisions (with tenacity) and report back.

- `civic311._resilience.retry`: `RetryPolicy`, `parse_retry_after`, outcome classification and
  the pure `decide` function (the retry/reconcile/stop table), plus tenacity adapters.
- `civic311._resilience.pool`: `EndpointPool`, the per-endpoint health state machine with circuit
  breaking (up → degraded → down → half-open probe), read by users as `EndpointHealth`.
"""

from civic311._resilience.pool import (
    FORMATS,
    Endpoint,
    EndpointHealth,
    EndpointPool,
    EndpointState,
)
from civic311._resilience.retry import (
    RETRYABLE_STATUSES,
    Action,
    Decision,
    Outcome,
    RetryPolicy,
    TenacityKwargs,
    backoff,
    classify_exception,
    classify_status,
    decide,
    decision_of,
    parse_retry_after,
    tenacity_kwargs,
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
    "TenacityKwargs",
    "backoff",
    "classify_exception",
    "classify_status",
    "decide",
    "decision_of",
    "parse_retry_after",
    "tenacity_kwargs",
]
