"""Pure resilience decisions: the retry policy and the endpoint pool.

Nothing in this package sends a request, sleeps, starts a thread or reads a clock; time and
randomness are passed in. The clients execute these decisions in one plain loop and report back.

- `civic311._resilience.retry`: `RetryPolicy`, `parse_retry_after`, outcome classification and
  the pure `RetryPolicy.decide` (the retry/reconcile/stop table).
- `civic311._resilience._tenacity`: the one small adapter that runs the same decisions under
  tenacity (imported on its own; the clients do not need it).
- `civic311._resilience.pool`: `EndpointPool`, the per-endpoint health state machine with circuit
  breaking (up → degraded → down → half-open probe), read by users as `EndpointHealth`.
  Imported from its own module, when a client is built (issue 13: not with `import civic311`).
"""

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
    "RETRYABLE_STATUSES",
    "Action",
    "Decision",
    "Outcome",
    "RetryPolicy",
    "backoff",
    "classify_status",
    "parse_retry_after",
]
