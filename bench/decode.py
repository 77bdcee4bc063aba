"""Decode speed: 10,000 service requests, JSON and XML, to typed models.

Contenders, timed interleaved in the same run (medians of repeated runs):

* ``json.loads`` alone - the floor for JSON (bytes to plain dicts, nothing typed);
* ``xml.etree.ElementTree.fromstring`` alone - the floor for XML (a tree, not even dicts);
* ``xmltodict.parse`` - what a peer client uses to read GeoReport XML (dicts, untyped);
* civic311, JSON and XML - ``protocol.read_response`` on a ``list_requests_call()``: the real
  path from a response body to ``list[ServiceRequest]`` (sniffing, hardened XML parsing,
  unwrapping, every converter hook, extras kept).

Goals (issue 13): civic311 JSON <= 2.5x json.loads; civic311 XML <= 0.6x xmltodict, with
ElementTree alone shown beside it. Where a goal is missed the script prints where the time
goes (the JSON path in stages, and a cProfile).

    .venv/bin/python bench/decode.py [--quick] [--repeats N] [--profile]
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import random
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

import httpx
from _common import Timer, banner, parse_args, result, time_call

try:
    import xmltodict
except ImportError:  # pragma: no cover - the bench extra is not installed
    sys.exit("decode.py needs xmltodict: pip install -e '.[bench]'")

from civic311._protocol import list_requests_call, read_response
from civic311.models import ServiceRequest

#: The goals of issue 13, as ratios to the floor or peer timed in the same run.
JSON_GOAL = 2.5
XML_GOAL = 0.6

STATUSES = ("open", "closed", "open", "open", "closed", "in_progress")
SERVICES = (
    ("001", "Cans left out 24x7"),
    ("002", "Construction plate shifted"),
    ("003", "Curb or curb ramp defect"),
    ("004", "Graffiti removal"),
    ("005", "Pothole in street"),
)
STREETS = ("Main St", "Oak Ave", "Elm St", "Chapel St", "Whitney Ave", "College St")
ZONES = (timezone.utc, timezone(timedelta(hours=-5)), timezone(timedelta(hours=-8)))
DESCRIPTIONS = (
    "Large pothole in the right lane, about two feet across.",
    "Graffiti on the north wall of the underpass; offensive words.",
    "Trash cans have been left on the curb since Monday.",
    "Steel plate over the trench moved; cars bang into it all night.",
    "Curb ramp is cracked & lifted - a wheelchair cannot pass <safely>.",
)


def _stamp(when: datetime, zone: timezone) -> str:
    return when.astimezone(zone).isoformat(timespec="seconds")


def make_records(n: int, seed: int = 311) -> list[dict[str, Any]]:
    """*n* realistic service requests: every spec field (some null), and a few extras."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    records = []
    for i in range(n):
        code, name = SERVICES[rng.randrange(len(SERVICES))]
        status = STATUSES[rng.randrange(len(STATUSES))]
        zone = ZONES[i % len(ZONES)]
        requested = start + timedelta(seconds=rng.randrange(90 * 86400))
        updated = requested + timedelta(seconds=rng.randrange(1, 5 * 86400))
        closed = status == "closed"
        record: dict[str, Any] = {
            "service_request_id": str(600000 + i),
            "status": status,
            "status_notes": "Work order completed by crew 7." if closed else None,
            "service_name": name,
            "service_code": code,
            "description": DESCRIPTIONS[rng.randrange(len(DESCRIPTIONS))],
            "agency_responsible": "Department of Public Works",
            "service_notice": "The City will respond within two business days",
            "requested_datetime": _stamp(requested, zone),
            "updated_datetime": _stamp(updated, zone),
            "expected_datetime": None if closed else _stamp(updated + timedelta(days=2), zone),
            "address": f"{rng.randrange(1, 2000)} {STREETS[rng.randrange(len(STREETS))]}",
            "address_id": str(545000 + rng.randrange(10000)),
            "zipcode": f"065{rng.randrange(10, 40)}",
            "lat": round(41.30 + rng.random() * 0.05, 6),
            "long": round(-72.95 + rng.random() * 0.05, 6),
            "media_url": f"https://city.example/media/{600000 + i}.jpg" if i % 3 else None,
        }
        # Fields the spec does not name, as real servers add them (kept in `extras`).
        if i % 2 == 0:
            record["priority"] = ("low", "normal", "high")[rng.randrange(3)]
        if i % 5 == 0:
            record["channel"] = "mobile"
            record["detail_url"] = f"https://city.example/r/{600000 + i}"
        records.append(record)
    return records


def json_body(records: list[dict[str, Any]]) -> bytes:
    """The spec's JSON shape: ``[{...}, ...]``, nulls as null."""
    return json.dumps(records, ensure_ascii=False).encode("utf-8")


def xml_body(records: list[dict[str, Any]]) -> bytes:
    """The spec's XML shape, indented as in the spec's examples:
    ``<service_requests><request>...``, nulls as empty elements."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<service_requests>']
    for record in records:
        out.append("\n  <request>")
        for key, value in record.items():
            if value is None:
                out.append(f"\n    <{key}/>")
            else:
                out.append(f"\n    <{key}>{escape(str(value))}</{key}>")
        out.append("\n  </request>")
    out.append("\n</service_requests>\n")
    return "".join(out).encode("utf-8")


def civic311_decoder(body: bytes, fmt: Any) -> Any:
    """A callable that decodes *body* through civic311's real response path."""
    call = list_requests_call()
    request = httpx.Request("GET", f"http://127.0.0.1/open311/v2/requests.{fmt}")
    response = httpx.Response(200, content=body, request=request)
    now = datetime.now(timezone.utc)

    def run() -> list[ServiceRequest]:
        models, _ = read_response(call, response, body, fmt, now)
        return models

    return run


def check_same(json_models: list[ServiceRequest], xml_models: list[ServiceRequest], n: int) -> None:
    """JSON and XML must decode to the same models (else the comparison means nothing)."""
    if len(json_models) != n or len(xml_models) != n:
        sys.exit(f"decoded {len(json_models)} (JSON) / {len(xml_models)} (XML) of {n} requests")
    if json_models != xml_models:
        bad = next(
            i for i, (a, b) in enumerate(zip(json_models, xml_models, strict=True)) if a != b
        )
        sys.exit(
            f"JSON and XML decode differently at {bad}:\n{json_models[bad]}\n{xml_models[bad]}"
        )
    first = json_models[0]
    assert first.requested_datetime is not None
    assert first.requested_datetime.tzinfo is not None
    assert isinstance(first.lat, float)
    assert "priority" in first.extras


def best_of(fn: Any, repeats: int = 5) -> float:
    return min(time_call(fn) for _ in range(repeats))


def json_stages(body: bytes, n: int) -> None:
    """The JSON path taken apart: each stage timed alone (best of 5), in milliseconds."""
    import attrs

    from civic311._wire import decode
    from civic311._wire.converter import parse_datetime, structurer
    from civic311._wire.shapes import items

    data = decode(body, "json").data
    records = items(data, ("service_requests", "requests", "request"), "service_requests")
    structure = structurer(ServiceRequest)
    models = [structure(r) for r in records]
    stamps = [
        r[k]
        for r in records
        for k in ("requested_datetime", "updated_datetime", "expected_datetime")
        if r.get(k)
    ]
    kwargs = [{f.name: getattr(m, f.name) for f in attrs.fields(ServiceRequest)} for m in models]
    total = best_of(civic311_decoder(body, "json"))
    rows = [
        ("json.loads (the floor)", best_of(lambda: json.loads(body))),
        ("wire.decode (sniff, UTF-8, json.loads)", best_of(lambda: decode(body, "json"))),
        ("shapes.items (unwrap)", best_of(lambda: items(data, ("requests",), "x"))),
        (
            "structure (generated), all records",
            best_of(lambda: [structure(r) for r in records]),
        ),
        (
            f"  (parse_datetime x{len(stamps):,}, for comparison)",
            best_of(lambda: [parse_datetime(t) for t in stamps]),
        ),
        (
            "  (ServiceRequest(**fields), for comparison)",
            best_of(lambda: [ServiceRequest(**k) for k in kwargs]),
        ),
        ("read_response, whole path", total),
    ]
    print(f"\n-- the civic311 JSON path in stages ({n:,} requests, best of 5, each alone)")
    for label, took in rows:
        print(f"   {label:<46}{took * 1e3:>8.1f}ms {took / total:>6.0%}")


def profile(label: str, fn: Any, top: int = 18) -> None:
    """Print the functions where *fn* spends its time (cProfile, by own time)."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    print(f"\n-- profile: {label} (cProfile, sorted by own time; cProfile inflates call costs)")
    for line in lines[2:]:
        print("   " + line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    n = 2_000 if args.quick else 10_000
    repeats = args.repeats or (5 if args.quick else 9)
    banner(f"decode: {n:,} service requests to typed models")

    records = make_records(n)
    jbody, xbody = json_body(records), xml_body(records)
    print(f"   JSON body {len(jbody) / 1e6:.2f} MB, XML body {len(xbody) / 1e6:.2f} MB")

    civic_json = civic311_decoder(jbody, "json")
    civic_xml = civic311_decoder(xbody, "xml")
    check_same(civic_json(), civic_xml(), n)
    print("   check: JSON and XML decode to equal list[ServiceRequest]")

    timer = Timer(
        {
            "json.loads": lambda: json.loads(jbody),
            "ElementTree.fromstring": lambda: ET.fromstring(xbody),
            "xmltodict.parse": lambda: xmltodict.parse(xbody),
            "civic311 JSON": civic_json,
            "civic311 XML": civic_xml,
        }
    )
    timer.run(repeats, budget=45.0 if not args.quick else 15.0)

    print(f"\n   {'contender':<24}{'median':>10}  {'per request':>12}  spread")
    for name in timer.contenders:
        t = timer.median(name)
        print(f"   {name:<24}{t * 1e3:>8.1f}ms  {t / n * 1e6:>10.2f}us  {timer.spread(name)}")

    j, x = timer.median("civic311 JSON"), timer.median("civic311 XML")
    print("\n   ratios: median over rounds of the paired ratio (ratio of the medians)")
    pairs = (
        ("civic311 JSON", "json.loads"),
        ("civic311 XML", "xmltodict.parse"),
        ("civic311 XML", "ElementTree.fromstring"),
    )
    for ours, theirs in pairs:
        print(
            f"   {ours} / {theirs}: {timer.ratio(ours, theirs):.2f}x "
            f"({timer.median(ours) / timer.median(theirs):.2f}x)"
        )
    print()
    met_json = result(
        "decode.json_vs_json_loads", timer.ratio("civic311 JSON", "json.loads"), "x", JSON_GOAL
    )
    met_xml = result(
        "decode.xml_vs_xmltodict", timer.ratio("civic311 XML", "xmltodict.parse"), "x", XML_GOAL
    )
    result(
        "decode.xml_vs_elementtree",
        timer.ratio("civic311 XML", "ElementTree.fromstring"),
        "x",
        None,
    )
    print(f"   (per request: JSON {j / n * 1e6:.2f}us, XML {x / n * 1e6:.2f}us)")

    if not met_json or args.profile:
        if not met_json:
            print(f"\nMISSED: civic311 JSON over {JSON_GOAL}x json.loads; where the time goes:")
        json_stages(jbody, n)
        profile("civic311 JSON", civic_json)
    if not met_xml or args.profile:
        if not met_xml:
            print(f"\nMISSED: civic311 XML over {XML_GOAL}x xmltodict; where the time goes:")
        profile("civic311 XML", civic_xml)
    return 0


if __name__ == "__main__":
    sys.exit(main())
