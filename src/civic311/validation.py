"""Check a `NewRequest` against its service's definition before sending it.

A service with ``metadata=true`` asks questions: its definition (GET services/{code}, spec §2.2)
lists attributes, each with a datatype, maybe a list of allowed values, and flags saying whether
the user must answer (spec §3.3). A city checks the answers when the request arrives and refuses
the whole request with a 400 that often names only the first problem. `validate` finds every
problem locally instead, and names each attribute with its question, so an app can show the user
what to fix::

    definition = client.get_service_definition("003")
    problems = validate(definition, request)          # [] when the request is fine
    check(definition, request)                        # or raise ValidationFailedError
    client.submit(sendable(definition, request))      # informational attributes dropped

The rules (spec §3.3, §3.5; reference §10.34, §10.38):

- the request's ``service_code`` is the definition's;
- a **required** attribute (``variable`` and ``required`` both true) has a non-blank value;
- ``number``: a finite decimal number (``7``, ``-2.5``, ``1e3``; not ``nan``, ``inf``, ``7 cm``);
- ``datetime``: an ISO 8601 / W3C datetime, as servers read them (`parse_datetime`);
- ``string``: one line (no line breaks: the spec's ``<input>``);
- ``text``: anything (the spec's ``<textarea>``);
- ``singlevaluelist``: exactly one value, one of the option *keys* (spec §3.5: keys are sent);
- ``multivaluelist``: one or more values, each a key; a single string counts as one value;
- a datatype the spec does not name (servers invent them; uReport emits whatever is
  configured, reference §3.3) accepts any single value;
- a code the definition does not have is a problem (a typo, or a stale definition);
- an attribute with ``variable=false`` is informational: it is shown to the user and never sent
  (§10.38); a value given for it is not a problem, `sendable` simply leaves it out.

A value that is blank (empty or spaces) counts as not given: the form encoder leaves it out
(spec §1.5). List attributes whose definition has no options at all (a server bug) accept any
key rather than none.
"""

from __future__ import annotations

import math

import attrs

from civic311._regex import on_first_use
from civic311._w3c import parse_datetime
from civic311.errors import InvalidRequestError, Problem, ValidationFailedError
from civic311.models import Attribute, NewRequest, ServiceDefinition

__all__ = ["Problem", "ValidationFailedError", "check", "sendable", "validate"]

#: How many allowed keys a "not one of" message lists before it says "…".
_LISTED_KEYS = 10


# A decimal number as servers parse it: digits, an optional fraction, an optional exponent.
# Stricter than float() on purpose: "nan", "inf", "1_000" and " 7 cm" are not numbers to a city.
_number = on_first_use(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _values(value: str | tuple[str, ...]) -> list[str]:
    """The non-blank values given for an attribute (blank ones are never sent)."""
    items = (value,) if isinstance(value, str) else value
    return [item for item in items if item.strip()]


def _keys_text(attribute: Attribute) -> str:
    keys = [v.key for v in attribute.values]
    shown = ", ".join(keys[:_LISTED_KEYS])
    return shown + (", …" if len(keys) > _LISTED_KEYS else "")


def _is_number(text: str) -> bool:
    stripped = text.strip()
    return bool(_number().fullmatch(stripped)) and math.isfinite(float(stripped))


def _check_value(attribute: Attribute, values: list[str]) -> list[str]:
    """Messages for the non-blank *values* given for *attribute* (empty: all good)."""
    datatype = attribute.datatype.strip().lower()
    if datatype == "multivaluelist":
        if not attribute.values:
            return []
        keys = attribute.value_keys()
        return [
            f"{v.strip()!r} is not one of its values ({_keys_text(attribute)})"
            for v in values
            if v.strip() not in keys
        ]
    if len(values) > 1:
        return [f"takes one value, got {len(values)}"]
    value = values[0]
    if datatype == "singlevaluelist":
        if attribute.values and value.strip() not in attribute.value_keys():
            return [f"{value.strip()!r} is not one of its values ({_keys_text(attribute)})"]
    elif datatype == "number":
        if not _is_number(value):
            return [f"{value!r} is not a number"]
    elif datatype == "datetime":
        try:
            parse_datetime(value)
        except ValueError:
            return [f"{value!r} is not an ISO 8601 datetime (e.g. 2026-01-01T08:00:00Z)"]
    elif datatype == "string" and ("\n" in value or "\r" in value):
        return ["must be one line (a string attribute takes no line breaks)"]
    return []  # text, and datatypes the spec does not name: anything goes


def _check_types(definition: object, request: object) -> None:
    if not isinstance(definition, ServiceDefinition):
        raise InvalidRequestError(
            "definition",
            f"must be a civic311.ServiceDefinition, not {type(definition).__name__}",
        )
    if not isinstance(request, NewRequest):
        raise InvalidRequestError(
            "request", f"must be a civic311.NewRequest, not {type(request).__name__}"
        )


def validate(definition: ServiceDefinition, request: NewRequest) -> list[Problem]:
    """Every problem *request* has against *definition*; an empty list when there is none.

    See the module docstring for the rules. Nothing is sent and nothing raised for problems;
    `ServiceDefinition.validate` raises `ValidationFailedError` instead.

    Raises:
        InvalidRequestError: *definition* or *request* is not the right kind of object.
    """
    _check_types(definition, request)
    problems: list[Problem] = []
    if request.service_code.strip() != definition.service_code.strip():
        problems.append(
            Problem(
                "service_code",
                None,
                f"the request is for service {request.service_code!r}, "
                f"the definition for {definition.service_code!r}",
            )
        )
    given = request.attributes
    for attribute in definition.attributes:
        raw = given.get(attribute.code)
        values = _values(raw) if raw is not None else []
        if not attribute.variable:
            continue  # informational: never sent (sendable drops it), never a problem
        if not values:
            if attribute.required:
                problems.append(Problem(attribute.code, attribute.description, "required"))
            continue
        problems.extend(
            Problem(attribute.code, attribute.description, message)
            for message in _check_value(attribute, values)
        )
    known = {a.code for a in definition.attributes}
    problems.extend(
        Problem(
            code,
            None,
            f"not an attribute of service {definition.service_code!r}",
        )
        for code, value in given.items()
        if code not in known and _values(value)
    )
    return problems


def sendable(definition: ServiceDefinition, request: NewRequest) -> NewRequest:
    """*request* as it should be sent: without values for informational attributes.

    An attribute with ``variable=false`` only presents information to the user and must never
    be sent (spec §3.3, reference §10.38). A one-item list for an attribute that takes a single
    value (anything but ``multivaluelist``) becomes that value, so it is not sent as
    ``attribute[CODE][]``. Everything else is left as it is: use `validate` to find problems.

    Raises:
        InvalidRequestError: *definition* or *request* is not the right kind of object.
    """
    _check_types(definition, request)
    by_code = {a.code: a for a in definition.attributes}
    kept: dict[str, str | tuple[str, ...]] = {}
    for code, value in request.attributes.items():
        attribute = by_code.get(code)
        if attribute is not None and not attribute.variable:
            continue
        if (
            attribute is not None
            and not isinstance(value, str)
            and len(value) == 1
            and not attribute.datatype.is_multi
        ):
            value = value[0]
        kept[code] = value
    if kept == dict(request.attributes):
        return request
    return attrs.evolve(request, attributes=kept)


def check(definition: ServiceDefinition, request: NewRequest) -> None:
    """Raise if *request* breaks *definition*: `validate`, for code that wants an exception.

    Raises:
        ValidationFailedError: its ``problems`` list every one, naming the attribute and its
            question.
        InvalidRequestError: *definition* or *request* is not what it should be.
    """
    problems = validate(definition, request)
    if problems:
        raise ValidationFailedError(problems)
