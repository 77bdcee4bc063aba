"""The web back-end examples (examples/web_starlette.py, examples/web_flask.py) against FakeCity
on 127.0.0.1, through their frameworks' test clients; and docs/web-backends.md's error table is
the one they use."""

from __future__ import annotations

import re
import runpy
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import civic311
from civic311.testing import FakeCity, Fault

ROOT = Path(__file__).parent.parent
STARLETTE = runpy.run_path(str(ROOT / "examples" / "web_starlette.py"))
FLASK = runpy.run_path(str(ROOT / "examples" / "web_flask.py"))
REPORT = {"service_code": "001", "lat": 39.1653, "long": -86.5264, "description": "Pothole"}

pytestmark = pytest.mark.filterwarnings(
    # Starlette 1.x asks for httpx2 in its TestClient; the app itself does not use it.
    "ignore:Using `httpx` with `starlette.testclient`"
)


class Http:
    """The two frameworks' test clients behind one face: (status, json, headers)."""

    def __init__(self, get: Callable[..., Any], post: Callable[..., Any], flask: bool) -> None:
        self._get, self._post, self._flask = get, post, flask

    def _read(self, response: Any) -> tuple[int, Any, Any]:
        body = response.get_json() if self._flask else response.json()
        return response.status_code, body, response.headers

    def get(self, path: str) -> tuple[int, Any, Any]:
        return self._read(self._get(path))

    def post(self, path: str, body: Any) -> tuple[int, Any, Any]:
        return self._read(self._post(path, json=body))


@pytest.fixture(params=["starlette", "flask"])
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["json", "xml"])
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def city() -> FakeCity:
    return FakeCity(seed=4)


@pytest.fixture
def app_for(framework: str, fmt: str) -> Iterator[Callable[[list[str]], Http]]:
    """Builds the framework's app on the given endpoints and yields its test client."""
    closers: list[Callable[[], None]] = []

    def build(endpoints: list[str]) -> Http:
        if framework == "starlette":
            from starlette.testclient import TestClient

            client = TestClient(STARLETTE["create_app"](endpoints, format=fmt))
            client.__enter__()
            closers.append(lambda: client.__exit__(None, None, None))
            return Http(client.get, client.post, flask=False)
        app = FLASK["create_app"](endpoints, format=fmt)
        closers.append(app.extensions["civic311"].close)
        test = app.test_client()
        return Http(test.get, test.post, flask=True)

    yield build
    for close in closers:
        close()


def test_services_submit_and_status(city: FakeCity, app_for: Callable[[list[str]], Http]) -> None:
    """The app lists services, files a report (201 and the receipt) and shows its status."""
    with city.serve() as url:
        http = app_for([url])
        status, services, _ = http.get("/services")
        assert status == 200
        assert [s["service_code"] for s in services] == ["001", "002", "003", "004", "005"]
        status, receipt, _ = http.post("/requests", REPORT)
        assert status == 201
        assert city.get(receipt["service_request_id"]) is not None
        status, found, _ = http.get(f"/requests/{receipt['service_request_id']}")
        assert (status, found["status"]) == (200, "open")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**REPORT, "descripton": "typo"}, "descripton"),
        ({**REPORT, "service_code": "999"}, "service_code"),
        ({"service_code": "001", "description": "where?"}, "location"),
        ([1, 2], "body"),
        ({**REPORT, "lat": "north"}, "lat"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    city: FakeCity, app_for: Callable[[list[str]], Http], body: Any, field: str
) -> None:
    """A typo'd key, an unknown service, no location, a non-object: 422 naming it, nothing filed."""
    with city.serve() as url:
        status, error, _ = app_for([url]).post("/requests", body)
    assert status == 422
    assert field in (error["field"] + error["message"])
    assert city.count_created() == 0


def test_unknown_request_is_404(city: FakeCity, app_for: Callable[[list[str]], Http]) -> None:
    """A request the city does not know is a 404 carrying the city's error list."""
    with city.serve() as url:
        status, error, _ = app_for([url]).get("/requests/987654")
    assert status == 404
    assert error["error"] == "NotFoundError"
    assert error["city_errors"][0]["code"] == "404"


def test_dead_primary_fails_over(app_for: Callable[[list[str]], Http]) -> None:
    """With the primary down, the fallback answers and /health says which is down."""
    primary = FakeCity(seed=4)
    mirror = FakeCity(store=primary.store)
    with primary.serve() as first, mirror.serve() as second:
        primary.down()
        http = app_for([first, second])
        for _ in range(4):
            assert http.post("/requests", REPORT)[0] == 201
        status, health, _ = http.get("/health")
    assert status == 200
    states = {e["url"]: e["state"] for e in health["endpoints"]}
    assert states[first] == "down"
    assert states[second] == "up"
    assert primary.count_created() == 4


def test_every_endpoint_down_is_503(app_for: Callable[[list[str]], Http]) -> None:
    """No endpoint answering: 503 for the call, 503 for /health."""
    city = FakeCity(seed=4)
    with city.serve() as url:
        city.down()
        http = app_for([url])
        status, error, _ = http.get("/services")
        # One endpoint: the underlying error, not AllEndpointsFailedError (issue 11.9).
        assert (status, error["error"]) == (503, "TransportError")
        assert http.get("/health")[0] == 503


def test_rate_limited_is_503_with_retry_after(
    city: FakeCity, app_for: Callable[[list[str]], Http]
) -> None:
    """The city's 429 (after the retries) becomes 503 with a Retry-After the caller can honour."""
    city.inject(Fault.status(429, retry_after="30", body="error"))
    with city.serve() as url:
        status, error, headers = app_for([url]).get("/services")
    assert status == 503
    assert error["error"] == "RateLimitedError"  # one endpoint: the error itself (issue 11.9)
    assert headers["Retry-After"] == "30"


def test_city_outage_is_503(city: FakeCity, app_for: Callable[[list[str]], Http]) -> None:
    """A city answering 500s to every retry is unavailable: 503, the last error named."""
    city.inject(Fault.status(500, body="html"))
    with city.serve() as url:
        status, error, _ = app_for([url]).get("/services")
    assert status == 503
    assert error["error"] == "ServerError"  # one endpoint: the error itself (issue 11.9)


def test_refused_api_key_is_502(app_for: Callable[[list[str]], Http]) -> None:
    """The city refusing our api key (403) is the back end's fault, not the user's: 502."""
    city = FakeCity(seed=4, api_key="the-right-key")
    with city.serve() as url:
        status, error, _ = app_for([url]).post("/requests", REPORT)
    assert status == 502
    assert error["error"] == "ForbiddenError"
    assert city.count_created() == 0


def test_flask_shares_one_client_across_threads() -> None:
    """32 threads filing through one Flask app (one shared Client) each get a distinct id."""
    city = FakeCity(seed=4)
    with city.serve() as url:
        app = FLASK["create_app"](url)
        barrier = threading.Barrier(32)

        def file(n: int) -> str:
            barrier.wait(timeout=10)
            response = app.test_client().post("/requests", json={**REPORT, "description": f"#{n}"})
            assert response.status_code == 201, response.get_json()
            return str(response.get_json()["service_request_id"])

        with ThreadPoolExecutor(max_workers=32) as pool:
            ids = list(pool.map(file, range(32)))
        app.extensions["civic311"].close()
    assert len(set(ids)) == 32
    assert city.count_created() == 32


@pytest.mark.parametrize("module", [STARLETTE, FLASK], ids=["starlette", "flask"])
def test_error_table_order_and_coverage(module: dict[str, Any]) -> None:
    """Each example's table lists every exported civic311 error class it can meet, subclasses
    before their bases, and ends with Civic311Error (500)."""
    table: list[tuple[type[Exception], int]] = module["ERROR_STATUS"]
    kinds = [kind for kind, _ in table]
    for i, kind in enumerate(kinds):
        assert not any(issubclass(later, kind) and later is not kind for later in kinds[i + 1 :])
    assert table[-1] == (civic311.Civic311Error, 500)
    assert module["http_status"](civic311.ValidationFailedError([])) == 422
    assert module["http_status"](civic311.ForbiddenError(status_code=403)) == 502


def test_examples_share_one_error_table() -> None:
    """The Starlette and the Flask examples answer every error the same way."""
    assert STARLETTE["ERROR_STATUS"] == FLASK["ERROR_STATUS"]


def test_docs_table_is_the_examples_table() -> None:
    """docs/web-backends.md's table of errors to statuses is the examples' ERROR_STATUS."""
    page = (ROOT / "docs" / "web-backends.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \|", page, re.MULTILINE)
    shown = [(getattr(civic311, name), int(status)) for name, status in rows]
    assert shown == STARLETTE["ERROR_STATUS"]
