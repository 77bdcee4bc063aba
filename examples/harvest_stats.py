"""Harvest a span of requests and print how long the city takes to close them, per service.

Run it against your city's GeoReport v2 endpoint, with ISO 8601 start and end datetimes::

    python examples/harvest_stats.py URL START END
    python examples/harvest_stats.py https://city.example/v2 2025-01-01T00:00Z 2025-04-01T00:00Z

With no URL it starts a local FakeCity with a seeded year of history, so it runs anywhere.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import ExitStack
from datetime import datetime, timezone

import civic311
from civic311 import stats
from civic311.harvest import HarvestWarning
from civic311.testing import FakeCity


def main(base_url: str, start: datetime, end: datetime) -> int:
    """Harvest [start, end] from *base_url*, print the table, and return how many were read."""
    with civic311.Client(base_url) as client, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HarvestWarning)
        by_service, total = stats.summarize(client.iter_requests(start_date=start, end_date=end))
    print(stats.format_table(by_service, total=total))
    for warning in caught:  # windows the server capped and could not page: say so
        print(f"warning: {warning.message}", file=sys.stderr)
    return total.count


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


if __name__ == "__main__":
    with ExitStack() as stack:
        if len(sys.argv) > 1:
            url, first, last = sys.argv[1], _when(sys.argv[2]), _when(sys.argv[3])
        else:
            first = datetime(2025, 1, 1, tzinfo=timezone.utc)
            last = datetime(2026, 1, 1, tzinfo=timezone.utc)
            city = FakeCity(seed=7)
            city.generate_requests(2000, start=first, end=last)
            url = stack.enter_context(city.serve())
        main(url, first, last)
