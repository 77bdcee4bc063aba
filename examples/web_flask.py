"""A Flask back end for a 311 app: one shared Client for every thread, short deadlines, errors
as HTTP. The routes and the error table are those of examples/web_starlette.py:

    GET  /services          the city's services
    POST /requests          file a report (JSON: NewRequest's fields); 201 and the receipt
    GET  /requests/<id>     one request as the city has it now
    GET  /health            each endpoint's health; 503 when none is up

Run it (it serves a local FakeCity and goes through each route with Flask's test client)::

    python examples/web_flask.py

In production: ``gunicorn --threads 8 'web_flask:create_app(os.environ["CITY_URL"])'``, or
``flask --app web_flask run`` with ``CITY_URL`` set (docs/web-backends.md).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from typing import Any

from flask import Flask, Response, jsonify, request

import civic311

#: Seconds for one HTTP exchange with the city: a handler cannot wait the default 10.
TIMEOUT = 3.0
#: At most 3 attempts, none started after 8 s: an answer (or a clear 503) within ~10 s.
RETRY = civic311.RetryPolicy(attempts=3, deadline=8.0, max_wait=2.0)

#: civic311's errors as the HTTP status this back end answers; the first match wins, so
#: subclasses come before their bases (docs/web-backends.md has the reasons).
ERROR_STATUS: list[tuple[type[Exception], int]] = [
    (civic311.InvalidRequestError, 422),  # bad input, caught before anything was sent
    (civic311.NotFoundError, 404),  # no such request (or service) at the city
    (civic311.BadRequestError, 422),  # the city refused the report's content
    (civic311.RateLimitedError, 503),  # the city asks us to slow down: Retry-After
    (civic311.ServerError, 503),  # the city failing (5xx) after the retries: try later
    (civic311.APIError, 502),  # 403 (our api key), 5xx: the city failed, not the user
    (civic311.DecodeError, 502),  # the city answered something unreadable
    (civic311.SubmissionUncertainError, 202),  # maybe filed: do not send it again
    (civic311.AllEndpointsFailedError, 503),  # every endpoint down: try again later
    (civic311.TransportError, 503),
    (civic311.Civic311Error, 500),
]


def http_status(error: Exception) -> int:
    """The HTTP status for a civic311 error (`ERROR_STATUS`)."""
    return next(status for kind, status in ERROR_STATUS if isinstance(error, kind))


def error_body(error: Exception) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and headers that answer *error*. Messages never hold the api key."""
    body: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
    headers: dict[str, str] = {}
    if isinstance(error, civic311.InvalidRequestError):
        body["field"] = error.field
    if isinstance(error, civic311.APIError):
        body["city_errors"] = [civic311.to_dict(detail) for detail in error.errors]
    cause = error.last_error if isinstance(error, civic311.AllEndpointsFailedError) else error
    if isinstance(error, civic311.AllEndpointsFailedError):
        body["last_error"] = type(cause).__name__ if cause is not None else None
        body["other_channels"] = error.other_channels  # where else a resident can report
    if isinstance(cause, civic311.RateLimitedError) and cause.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(cause.retry_after)))
    if isinstance(error, civic311.SubmissionUncertainError):
        body["message"] = "the city may have the report; do not send it again: " + str(error)
    return body, headers


def new_request(payload: object) -> civic311.NewRequest:
    """A NewRequest from a JSON body. `civic311.from_dict` refuses an unknown key
    (``"descripton"``), so a report is never filed without the part the user typed, and names
    the field of any missing or unreadable value (an `InvalidRequestError`: a 422)."""
    if not isinstance(payload, dict):
        raise civic311.InvalidRequestError("body", "must be a JSON object")
    if "media" in payload:  # files in a JSON body (base64): not taken from a browser here
        raise civic311.InvalidRequestError("media", "is not a field of a service request")
    return civic311.from_dict(civic311.NewRequest, payload)


def health_body(report: list[civic311.EndpointHealth]) -> dict[str, Any]:
    """Each endpoint's health as JSON, and whether any is up."""
    endpoints = [
        {
            "url": health.url,
            "state": health.state.value,
            "since": health.since.isoformat(),
            "consecutive_failures": health.consecutive_failures,
            "latency_ms": None if health.latency_avg is None else health.latency_avg * 1000,
            "format": health.format,
        }
        for health in report
    ]
    return {"ok": any(e["state"] != "down" for e in endpoints), "endpoints": endpoints}


def create_app(endpoints: str | list[str], **options: Any) -> Flask:
    """The app, with ONE Client for the process: it is thread-safe, so every worker thread
    shares its connection pool and its endpoints' health. Closed when the process exits."""
    app = Flask(__name__)
    client = civic311.Client(endpoints, timeout=TIMEOUT, retry=RETRY, **options)
    app.extensions["civic311"] = client
    atexit.register(client.close)

    @app.get("/services")
    def services() -> Response:
        return jsonify([civic311.to_dict(service) for service in client.list_services()])

    @app.post("/requests")
    def submit() -> tuple[Response, int]:
        payload = request.get_json(silent=True)
        if payload is None:
            raise civic311.InvalidRequestError("body", "is not JSON")
        receipt = client.submit(new_request(payload), validate=True)
        return jsonify(civic311.to_dict(receipt)), 201

    @app.get("/requests/<request_id>")
    def one(request_id: str) -> Response:
        return jsonify(civic311.to_dict(client.get_request(request_id)))

    @app.get("/health")
    def health() -> tuple[Response, int]:
        with contextlib.suppress(civic311.Civic311Error):
            client.list_services()  # a real call, so the report is current
        body = health_body(client.health())
        return jsonify(body), 200 if body["ok"] else 503

    @app.errorhandler(civic311.Civic311Error)
    def on_error(error: civic311.Civic311Error) -> tuple[Response, int, dict[str, str]]:
        body, headers = error_body(error)
        return jsonify(body), http_status(error), headers

    return app


def main() -> None:
    """Serve a FakeCity and take the app through its routes with Flask's test client."""
    from civic311.testing import FakeCity

    with FakeCity().serve() as city_url:
        app = create_app(city_url)
        http = app.test_client()
        print("services:", [s["service_code"] for s in http.get("/services").get_json()])
        report = {"service_code": "001", "lat": 39.1653, "long": -86.5264, "description": "Pothole"}
        filed = http.post("/requests", json=report)
        request_id = filed.get_json()["service_request_id"]
        print("filed:", filed.status_code, request_id)
        print("status:", http.get(f"/requests/{request_id}").get_json()["status"])
        typo = http.post("/requests", json={**report, "descripton": "typo"})
        print("typo:", typo.status_code, typo.get_json()["field"])
        print("health:", http.get("/health").status_code)
        app.extensions["civic311"].close()


if os.environ.get("CITY_URL"):
    app = create_app(os.environ["CITY_URL"], api_key=os.environ.get("CITY_API_KEY"))

if __name__ == "__main__":
    main()
