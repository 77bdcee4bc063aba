"""Validation against service definitions (spec §3.3, §3.5; reference §10.34, §10.38): every
problem at once, each naming the attribute and its question."""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import pytest

from civic311 import InvalidRequestError, NewRequest, from_dict
from civic311._wire.form import encode_form, new_request_fields
from civic311.models import Attribute, AttributeDatatype, AttributeValue, ServiceDefinition
from civic311.testing import FakeCity
from civic311.validation import Problem, ValidationFailedError, check, sendable, validate


def attribute(code: str, datatype: str = "string", **kwargs: Any) -> Attribute:
    values = tuple(AttributeValue(key=k, name=k.title()) for k in kwargs.pop("keys", ()))
    return Attribute(code=code, datatype=AttributeDatatype(datatype), values=values, **kwargs)


DEFINITION = ServiceDefinition(
    service_code="001",
    attributes=(
        attribute("SAFETY", description="Call 911 if dangerous.", variable=False, order=1),
        attribute(
            "SURFACE",
            "multivaluelist",
            description="What surface is it on?",
            required=True,
            keys=("brick", "metal"),
            order=2,
        ),
        attribute("DEPTH", "number", description="How deep, in cm?", order=3),
        attribute("NOTICED", "datetime", description="When did you notice it?", order=4),
        attribute("LANE", "string", description="Which lane?", order=5),
        attribute("DETAILS", "text", description="Anything else?", order=6),
        attribute("LIGHT", "singlevaluelist", description="Which light?", keys=("1", "2"), order=7),
        attribute("COLOR", "colorpicker", description="What colour?", order=8),
    ),
)


def new(attributes: dict[str, Any] | None = None, **kwargs: Any) -> NewRequest:
    fields: dict[str, Any] = {"service_code": "001", "address_string": "1 Main St"}
    fields.update(kwargs)
    return NewRequest(attributes=attributes or {}, **fields)


def messages(request: NewRequest, definition: ServiceDefinition = DEFINITION) -> list[str]:
    return [str(p) for p in validate(definition, request)]


def test_a_good_request_has_no_problems() -> None:
    """A request that answers every question properly gives an empty list."""
    request = new(
        {
            "SURFACE": ["brick", "metal"],
            "DEPTH": "7.5",
            "NOTICED": "2026-01-01T08:00:00Z",
            "LANE": "left",
            "DETAILS": "line one\nline two",
            "LIGHT": "2",
            "COLOR": "teal",
        }
    )
    assert validate(DEFINITION, request) == []
    check(DEFINITION, request)  # no exception


def test_required_attribute_missing_or_blank() -> None:
    """A required attribute absent, empty, blank or an empty list is 'required'."""
    expected = ["SURFACE (What surface is it on?): required"]
    assert messages(new()) == expected
    assert messages(new({"SURFACE": ""})) == expected
    assert messages(new({"SURFACE": "   "})) == expected
    assert messages(new({"SURFACE": []})) == expected
    assert messages(new({"SURFACE": [" ", ""]})) == expected


def test_optional_attributes_may_be_left_out() -> None:
    """Only required attributes must be answered; blank optional ones are fine."""
    assert messages(new({"SURFACE": "brick", "DEPTH": "", "LANE": " "})) == []


@pytest.mark.parametrize("value", ["7", "-2.5", "+3", ".5", "5.", "1e3", "2.5E-2", " 7 "])
def test_number_accepts_decimal_numbers(value: str) -> None:
    """number takes finite decimal numbers, with or without a fraction or an exponent."""
    assert messages(new({"SURFACE": "brick", "DEPTH": value})) == []


@pytest.mark.parametrize(
    "value", ["deep", "nan", "inf", "-Infinity", "7 cm", "1_000", "0x10", "1e"]
)
def test_number_refuses_anything_else(value: str) -> None:
    """number refuses words, nan/inf, units, underscores and hex, quoting the value."""
    assert messages(new({"SURFACE": "brick", "DEPTH": value})) == [
        f"DEPTH (How deep, in cm?): {value!r} is not a number"
    ]


@pytest.mark.parametrize(
    "value", ["2026-01-01T08:00:00Z", "2026-01-01T08:00:00+02:00", "2026-01-01", "2026-01-01 08:00"]
)
def test_datetime_accepts_iso_8601_as_servers_write_it(value: str) -> None:
    """datetime takes the W3C/ISO 8601 forms civic311 parses."""
    assert messages(new({"SURFACE": "brick", "NOTICED": value})) == []


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "01/02/2026"])
def test_datetime_refuses_other_text(value: str) -> None:
    """datetime refuses what is not an ISO 8601 datetime, with an example of one."""
    [problem] = validate(DEFINITION, new({"SURFACE": "brick", "NOTICED": value}))
    assert problem.code == "NOTICED"
    assert problem.message.startswith(f"{value!r} is not an ISO 8601 datetime")


def test_string_takes_no_line_breaks_but_text_does() -> None:
    """string is one line (the spec's <input>); text may hold line breaks (<textarea>)."""
    assert messages(new({"SURFACE": "brick", "LANE": "a\nb", "DETAILS": "a\r\nb"})) == [
        "LANE (Which lane?): must be one line (a string attribute takes no line breaks)"
    ]
    assert messages(new({"SURFACE": "brick", "LANE": "a\rb"}))[0].startswith("LANE")


def test_singlevaluelist_takes_exactly_one_key() -> None:
    """singlevaluelist needs one value that is one of the option keys, not a name."""
    assert messages(new({"SURFACE": "brick", "LIGHT": ["1"]})) == []
    assert messages(new({"SURFACE": "brick", "LIGHT": ["1", "2"]})) == [
        "LIGHT (Which light?): takes one value, got 2"
    ]
    assert messages(new({"SURFACE": "brick", "LIGHT": "One"})) == [
        "LIGHT (Which light?): 'One' is not one of its values (1, 2)"
    ]


def test_multivaluelist_takes_one_or_more_keys() -> None:
    """multivaluelist takes a string or a list; each value must be a key, each bad one listed."""
    assert messages(new({"SURFACE": "metal"})) == []
    assert messages(new({"SURFACE": ["brick", "wood", "glass"]})) == [
        "SURFACE (What surface is it on?): 'wood' is not one of its values (brick, metal)",
        "SURFACE (What surface is it on?): 'glass' is not one of its values (brick, metal)",
    ]


def test_long_key_lists_are_cut_short_in_messages() -> None:
    """A list attribute with many options lists ten keys, then an ellipsis."""
    many = ServiceDefinition(
        service_code="001",
        attributes=(attribute("N", "singlevaluelist", keys=[str(i) for i in range(30)]),),
    )
    [text] = messages(new({"N": "x"}), many)
    assert text == "N: 'x' is not one of its values (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, …)"


def test_list_attribute_without_options_accepts_any_key() -> None:
    """A server's list attribute with no values at all does not make every answer wrong."""
    bare = ServiceDefinition(service_code="001", attributes=(attribute("K", "singlevaluelist"),))
    assert messages(new({"K": "anything"}), bare) == []


def test_unknown_datatypes_accept_any_single_value() -> None:
    """Datatypes servers invent (uReport, §3.3) accept any single value, line breaks too."""
    assert messages(new({"SURFACE": "brick", "COLOR": "deep\nblue"})) == []
    assert messages(new({"SURFACE": "brick", "COLOR": ["a", "b"]})) == [
        "COLOR (What colour?): takes one value, got 2"
    ]


def test_datatype_names_are_read_case_insensitively() -> None:
    """'Number' and ' NUMBER ' are the number datatype."""
    odd = ServiceDefinition(service_code="001", attributes=(attribute("D", " Number "),))
    assert messages(new({"D": "x"}), odd) == ["D: 'x' is not a number"]


def test_unknown_codes_are_flagged() -> None:
    """An attribute code the definition does not have is a problem (a typo or stale definition)."""
    assert messages(new({"SURFACE": "brick", "DEPHT": "7"})) == [
        "DEPHT: not an attribute of service '001'"
    ]
    assert messages(new({"SURFACE": "brick", "DEPHT": ""})) == []  # blank: never sent


def test_informational_attributes_are_not_problems() -> None:
    """A variable=false attribute is informational (§10.38): a value for it is no problem;
    sendable leaves it out."""
    assert messages(new({"SURFACE": "brick", "SAFETY": "yes"})) == []


def test_informational_required_attribute_is_not_required() -> None:
    """required applies only to variable attributes."""
    odd = ServiceDefinition(
        service_code="001", attributes=(attribute("INFO", variable=False, required=True),)
    )
    assert messages(new(), odd) == []


def test_service_code_must_match() -> None:
    """A request for another service is a problem, reported first."""
    [first, *_] = validate(DEFINITION, new(service_code="002"))
    assert first == Problem(
        "service_code", None, "the request is for service '002', the definition for '001'"
    )


def test_every_problem_is_reported_in_definition_order() -> None:
    """All problems come back at once: definition order, unknown codes last (the informational
    SAFETY value is no problem)."""
    request = new({"ZZZ": "1", "DEPTH": "deep", "SAFETY": "x", "LIGHT": "9"})
    assert [p.code for p in validate(DEFINITION, request)] == [
        "SURFACE",
        "DEPTH",
        "LIGHT",
        "ZZZ",
    ]


def test_validate_refuses_wrong_argument_types() -> None:
    """validate and sendable name the argument that is not a definition or a request."""
    with pytest.raises(InvalidRequestError) as caught:
        validate({"service_code": "001"}, new())  # type: ignore[arg-type]
    assert caught.value.field == "definition"
    with pytest.raises(InvalidRequestError) as caught:
        sendable(DEFINITION, {"service_code": "001"})  # type: ignore[arg-type]
    assert caught.value.field == "request"


# --- the error ------------------------------------------------------------------------------


def test_definition_validate_raises_with_every_problem() -> None:
    """ServiceDefinition.validate raises ValidationFailedError listing each problem by name."""
    with pytest.raises(ValidationFailedError) as caught:
        check(DEFINITION, new({"DEPTH": "deep"}))
    error = caught.value
    assert isinstance(error, InvalidRequestError)
    assert error.field == "attributes"
    assert str(error) == (
        "attributes: 2 problems: SURFACE (What surface is it on?): required; "
        "DEPTH (How deep, in cm?): 'deep' is not a number"
    )
    assert [p.code for p in error.problems] == ["SURFACE", "DEPTH"]


def test_one_problem_is_singular() -> None:
    """The message says '1 problem' for one."""
    error = ValidationFailedError([Problem("A", None, "required")])
    assert str(error) == "attributes: 1 problem: A: required"


def test_validation_failed_error_pickles() -> None:
    """The error survives pickling with its problems (process pools, task queues)."""
    error = ValidationFailedError([Problem("A", "Q?", "required")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == str(error)


# --- sendable -------------------------------------------------------------------------------


def test_sendable_drops_informational_attributes() -> None:
    """sendable removes variable=false attributes (§10.38) and keeps everything else."""
    request = new({"SAFETY": "x", "SURFACE": ["brick"], "ZZZ": "1"}, description="hole")
    sent = sendable(DEFINITION, request)
    assert sent.attributes == {"SURFACE": ("brick",), "ZZZ": "1"}
    assert sent.description == "hole"
    assert "attribute[SAFETY]" not in dict(new_request_fields(sent))


def test_sendable_collapses_one_item_lists_for_single_value_attributes() -> None:
    """A one-item list for a non-multivalue attribute is sent as attribute[C], not [C][]."""
    sent = sendable(DEFINITION, new({"SURFACE": ["brick"], "LIGHT": ["1"], "DEPTH": ["3"]}))
    assert sent.attributes == {"SURFACE": ("brick",), "LIGHT": "1", "DEPTH": "3"}
    assert ("attribute[LIGHT]", "1") in new_request_fields(sent)


def test_sendable_returns_the_same_request_when_nothing_changes() -> None:
    """A request with nothing to drop comes back as it is."""
    request = new({"SURFACE": "brick"})
    assert sendable(DEFINITION, request) is request


# --- agreement with a strict city -----------------------------------------------------------


CASES: list[tuple[str, dict[str, Any]]] = [
    ("001", {}),
    ("001", {"DEPTH": "7.5", "NOTICED": "2026-01-01T08:00:00Z", "DETAILS": "a\nb"}),
    ("001", {"DEPTH": "deep"}),
    ("001", {"NOTICED": "last week"}),
    ("001", {"LANE": "left\nright"}),
    ("002", {"LIGHTTYPE": "123"}),
    ("002", {"LIGHTTYPE": "999"}),
    ("002", {"LIGHTTYPE": ["123", "124"]}),
    ("003", {}),
    ("003", {"SURFACE": ["brick", "metal"], "OFFENSIVE": "Y"}),
    ("003", {"SURFACE": ["brick", "paper"]}),
    ("003", {"SURFACE": "wood", "OFFENSIVE": "maybe"}),
]


@pytest.mark.parametrize(("code", "attributes"), CASES)
def test_validate_agrees_with_a_strict_city(code: str, attributes: dict[str, Any]) -> None:
    """What validate passes, FakeCity accepts; what FakeCity refuses, validate flags."""
    city = FakeCity()
    with httpx.Client(transport=city.transport(), base_url=city.base_url) as http:
        definition = from_dict(ServiceDefinition, http.get(f"services/{code}.json").json())
        request = new(attributes, service_code=code)
        problems = validate(definition, request)
        response = http.post(
            "requests.json",
            content=encode_form(new_request_fields(sendable(definition, request))),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
    assert (response.status_code == 200) == (not problems), (problems, response.text)
