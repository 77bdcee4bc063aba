"""GET tokens/{token}: batch services, pending look-ups, delays and the id they resolve to."""

from __future__ import annotations

import httpx
import pytest

from civic311.testing import Dialect, FakeCity, VirtualClock

from .fakecity_helpers import body, spec_errors, text, xml

NOISE = {"service_code": "004", "address_string": "12 Crown St", "description": "Loud party"}


def _token(http: httpx.Client) -> str:
    [item] = body(http.post("requests.json", data=NOISE))
    return str(item["token"])


def test_first_lookup_is_pending_then_resolves(http: httpx.Client, city: FakeCity) -> None:
    """By default the first look-up answers the token alone; the next one adds the id."""
    token = _token(http)
    assert body(http.get(f"tokens/{token}.json")) == [{"token": token}]
    [resolved] = body(http.get(f"tokens/{token}.json"))
    assert resolved == {"service_request_id": city.created[0].service_request_id, "token": token}
    assert body(http.get(f"tokens/{token}.json")) == [resolved]  # stays resolved


def test_token_xml_shape(http: httpx.Client, city: FakeCity) -> None:
    """tokens/{t}.xml is <service_requests><request> with <service_request_id> and <token>."""
    city.token_lookups = 0
    token = _token(http)
    root = xml(http.get(f"tokens/{token}.xml"))
    assert root.tag == "service_requests"
    request = root.find("request")
    assert request is not None
    assert text(request, "token") == token
    assert text(request, "service_request_id") == city.created[0].service_request_id


def test_pending_token_xml_has_no_id(http: httpx.Client) -> None:
    """A pending token answers a <request> with the token and no <service_request_id>."""
    token = _token(http)
    request = xml(http.get(f"tokens/{token}.xml")).find("request")
    assert request is not None
    assert request.find("service_request_id") is None
    assert text(request, "token") == token


def test_token_lookups_zero_resolves_at_once(http: httpx.Client, city: FakeCity) -> None:
    """With token_lookups=0 the first look-up already has the id."""
    city.token_lookups = 0
    token = _token(http)
    assert "service_request_id" in body(http.get(f"tokens/{token}.json"))[0]


def test_token_delay_runs_on_the_clock(
    http: httpx.Client, city: FakeCity, clock: VirtualClock
) -> None:
    """With token_delay the token stays pending until that many clock seconds have passed."""
    city.token_delay = 30
    city.token_lookups = 0
    token = _token(http)
    clock.advance(29)
    assert "service_request_id" not in body(http.get(f"tokens/{token}.json"))[0]
    clock.advance(1)
    assert "service_request_id" in body(http.get(f"tokens/{token}.json"))[0]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_unknown_token_is_404(http: httpx.Client, fmt: str) -> None:
    """A token the city never handed out answers 404."""
    response = http.get(f"tokens/nope.{fmt}")
    assert response.status_code == 404
    assert spec_errors(response, fmt)[0][0] == 404


def test_sf_dialect_answers_404_while_pending(http: httpx.Client, city: FakeCity) -> None:
    """In the token_404_while_pending dialect a pending token is a 404 (San Francisco)."""
    city.dialect = Dialect.sf()
    token = _token(http)
    assert http.get(f"tokens/{token}.json").status_code == 404
    assert http.get(f"tokens/{token}.json").status_code == 200


def test_pending_batch_request_is_not_listed_until_processed(
    http: httpx.Client, city: FakeCity, clock: VirtualClock
) -> None:
    """A batch request is hidden from GET requests and requests/{id} until its token is ready."""
    city.token_delay = 60
    _token(http)
    request_id = city.created[0].service_request_id
    assert body(http.get("requests.json")) == []
    assert http.get(f"requests/{request_id}.json").status_code == 404
    clock.advance(60)
    [listed] = body(http.get("requests.json"))
    assert listed["service_request_id"] == request_id


def test_chicago_lists_pending_requests_without_id(
    http: httpx.Client, city: FakeCity, clock: VirtualClock
) -> None:
    """In the Chicago dialect a pending batch request is listed with no service_request_id."""
    city.dialect = Dialect.chicago()
    city.token_delay = 60
    _token(http)
    [listed] = body(http.get("requests.json"))
    assert "service_request_id" not in listed
    assert listed["description"] == "Loud party"
    clock.advance(60)
    [listed] = body(http.get("requests.json"))
    assert listed["service_request_id"] == city.created[0].service_request_id


def test_tokens_are_seeded(clock: VirtualClock) -> None:
    """Two cities with the same seed hand out the same tokens."""
    tokens = []
    for _ in range(2):
        city = FakeCity(seed=3, clock=clock)
        with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
            tokens.append(_token(http))
    assert tokens[0] == tokens[1]
    assert len(tokens[0]) == 12
