"""File every report of a CSV (or JSON Lines) file exactly once, resumably, and track them.

    python examples/bulk_file.py reports.csv https://your.city/open311/v2 [API_KEY]

Run it again after a crash, a Ctrl-C or an outage: rows already filed are skipped, and rows
whose answer was lost are looked for on the server before anything is sent again. The ledger
(``reports.sqlite`` beside the file) is your record of what was filed.

With no arguments it writes a small sample file to a temporary directory and files it with a
local FakeCity, so it runs anywhere.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import civic311
from civic311 import bulk
from civic311.ledger import Ledger
from civic311.testing import FakeCity

SAMPLE = """service_code,lat,long,description,attribute.SURFACE
001,38.8895,-77.0353,Pothole by the school gate,
002,38.8977,-77.0365,Streetlight dark all night,
003,38.8899,-77.0091,Tag on the underpass,brick|metal
"""


async def main(path: Path, base_url: str, api_key: str | None = None) -> bulk.BulkSummary:
    """File *path*'s rows with *base_url*, print what became of each, and track them."""
    rows = list(bulk.read_rows(path))
    async with civic311.AsyncClient(base_url, api_key=api_key) as client:
        with Ledger(path.with_suffix(".sqlite")) as ledger:
            summary = await bulk.submit_all(client, rows, ledger=ledger, concurrency=4)
            for result in summary.results:
                print(f"row {result.number}: {result.outcome} {result.service_request_id or ''}")
            tracked = await bulk.track_all(client, ledger=ledger)
    print(f"{summary.counts()}; {len(tracked.requests)} tracked")
    return summary


if __name__ == "__main__":
    with ExitStack() as stack:
        if len(sys.argv) > 2:
            file, url = Path(sys.argv[1]), sys.argv[2]
            key = sys.argv[3] if len(sys.argv) > 3 else None
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            file = folder / "reports.csv"
            file.write_text(SAMPLE, encoding="utf-8")
            url, key = stack.enter_context(FakeCity().serve()), None
        done = asyncio.run(main(file, url, key))
    sys.exit(0 if done.ok else 1)
