"""The one cattrs converter: plain data ⇄ models.

Every Open311 decision about values lives here, in hooks at the edge, and nowhere in the models
(the cattrs "preconf" pattern). `configure_converter` applies them:

- **text** is trimmed (the spec's own ``media_url`` has a trailing space, reference §10.18);
  empty text is None (``<description></description>`` ↔ ``null`` ↔ missing, §10.17);
- **ids, codes, keys and zipcodes** are strings: numbers become their digits (``638344`` →
  ``"638344"``), and the JSON decoder has already kept ``001`` as ``"001"`` (§10.13, §10.15);
- **booleans** accept ``true``/``false`` in any case, as strings or JSON booleans, and
  ``1``/``0``, ``yes``/``no``. This hook exists because cattrs' default turns the string
  ``"false"`` into True (§10.16);
- **datetimes** accept the W3C profile of ISO 8601: ``Z``, ``±HH:MM``, ``±HHMM``, fractions,
  ``YYYY-MM-DD HH:MM`` (discovery's changeset), and no zone at all, read as UTC (§6, §10.28);
  they come out timezone-aware;
- **lat/long** accept strings or numbers (§10.14); **order** accepts ``"2"``;
- **status, service type and datatype** are open `str` types: any value is kept (§10.21);
- **keywords** are a comma-separated string or a list, trimmed into a tuple;
- **unknown fields** go into ``extras`` (§10.19); known misspellings are read under their spec
  name (``servicerequest_id``, ``status_note``, ``adress_id``, §10.20).

Unstructuring (`to_dict`) gives JSON-ready dicts: ISO 8601 datetimes, lists for tuples, plain
strings for the open types, ``extras`` nested under ``"extras"``. `from_dict` reads that back.

A `NewRequest`'s files (`MediaFile`) travel whole, so a request parked in the outbox or handed to
a task queue keeps its photo: each is ``{"filename", "content_type", "content_base64"}``, the
bytes in standard base64 (about a third larger than the file; mind it when you store many).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar, cast, get_type_hints

import attrs
import cattrs

from civic311._w3c import format_datetime, parse_datetime
from civic311.errors import DecodeError
from civic311.media import MediaFile
from civic311.models import (
    Attribute,
    AttributeDatatype,
    AttributeValue,
    ErrorDetail,
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    ServiceType,
    Status,
    TokenStatus,
)

__all__ = [
    "configure_converter",
    "converter",
    "format_datetime",
    "from_dict",
    "make_converter",
    "parse_datetime",
    "to_dict",
]

T = TypeVar("T")

#: Models the converter knows; each gets the extras-keeping structure hook.
MODELS: tuple[type[Any], ...] = (
    Attribute,
    AttributeValue,
    ErrorDetail,
    NewRequest,
    Receipt,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)

#: Wire names some servers use for spec fields (reference §10.20), per model.
ALIASES: dict[type[Any], dict[str, str]] = {
    ServiceRequest: {
        "servicerequest_id": "service_request_id",  # Mark-a-Spot D8
        "status_note": "status_notes",  # Mark-a-Spot D8
        "address_string": "address",  # Mark-a-Spot D8 echoes the POST name
        "adress_id": "address_id",  # Klarschiff
    },
    Receipt: {"servicerequest_id": "service_request_id"},
    TokenStatus: {"servicerequest_id": "service_request_id"},
}


# --- scalar hooks ----------------------------------------------------------------------------


def _scalar(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dict | list):
        # FixMyStreet's agency_responsible is {"recipient": [...]} (reference §8.7): flatten
        # a container of text, two levels at most — deeper is not a text field at all.
        return _flatten(value, what, 2)
    raise DecodeError(f"{what}: expected text, got {type(value).__name__}")


def _flatten(value: Any, what: str, levels: int) -> str:
    items = value.values() if isinstance(value, dict) else value
    parts = []
    for item in items:
        if isinstance(item, dict | list):
            if levels <= 1:
                raise DecodeError(f"{what}: expected text, got nested {type(item).__name__}s")
            text = _flatten(item, what, levels - 1)
        else:
            text = _optional_text(item, what) or ""
        if text:
            parts.append(text)
    return ", ".join(parts)


def _optional_text(value: Any, what: str = "value") -> str | None:
    if type(value) is str:  # the common case, first (a hot path: every text field)
        return value.strip() or None
    if value is None:
        return None
    text = _scalar(value, what)
    return text or None


def _text(value: Any, what: str = "value") -> str:
    if value is None:
        raise DecodeError(f"{what}: required, got nothing")
    text = value.strip() if type(value) is str else _scalar(value, what)
    if not text:
        raise DecodeError(f"{what}: required, got an empty value")
    return text


_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


def _optional_bool(value: Any, what: str = "value") -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise DecodeError(f"{what}: expected a boolean, got {value!r}")


def _bool(value: Any, what: str = "value") -> bool:
    return bool(_optional_bool(value, what))


def _finite(number: float, what: str) -> float:
    # NaN and infinities are no coordinate or order, and would make to_dict's JSON invalid.
    if not math.isfinite(number):
        raise DecodeError(f"{what}: expected a finite number, got {number!r}")
    return number


def _short_repr(value: Any) -> str:
    text = repr(value) if not isinstance(value, list | dict) else type(value).__name__
    return text if len(text) <= 80 else text[:79] + "…"


def _optional_float(value: Any, what: str = "value") -> float | None:
    if type(value) is float and math.isfinite(value):  # JSON numbers first: lat, long
        return value
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise DecodeError(f"{what}: the number is too large") from None
        return _finite(number, what)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return _finite(float(text), what)
        except ValueError:
            pass
    raise DecodeError(f"{what}: expected a number, got {_short_repr(value)}")


def _optional_int(value: Any, what: str = "value") -> int | None:
    number = _optional_float(value, what)
    if number is None:
        return None
    if not number.is_integer():
        raise DecodeError(f"{what}: expected a whole number, got {value!r}")
    return int(number)


def _optional_datetime(value: Any, what: str = "value") -> datetime | None:
    if isinstance(value, str):  # the common case, first (a hot path)
        if not value.strip():
            return None
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    elif value is None:
        return None
    elif isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    raise DecodeError(f"{what}: expected a W3C datetime, got {value!r}")


def _keywords(value: Any, what: str = "keywords") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts: list[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise DecodeError(f"{what}: expected a comma-separated string or a list, got {value!r}")
    words = (_optional_text(p, what) for p in parts)
    return tuple(w for w in words if w)


def _open_type(cls: type[str]) -> Callable[[Any, str], Any]:
    def hook(value: Any, what: str = "value") -> Any:
        text = _optional_text(value, what)
        return None if text is None else cls(text)

    return hook


def _media_file_to_dict(media: MediaFile) -> dict[str, str]:
    """A JSON-ready dict of a `MediaFile`: its name, content type and base64 bytes."""
    return {
        "filename": media.filename,
        "content_type": media.content_type,
        "content_base64": base64.b64encode(media.content).decode("ascii"),
    }


def _media_file(value: Any, what: str = "media") -> MediaFile:
    if isinstance(value, MediaFile):
        return value
    if not isinstance(value, Mapping):
        raise DecodeError(f"{what}: expected a media object, got {type(value).__name__}")
    encoded = value.get("content_base64")
    if not isinstance(encoded, str):
        raise DecodeError(f"{what}: content_base64 must be a base64 string")
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{what}: content_base64 is not valid base64 ({exc})") from None
    # MediaFile checks the rest (name, type, non-empty) and raises InvalidRequestError.
    filename: Any = value.get("filename")
    return MediaFile(
        filename=filename,
        content=content,
        content_type=value.get("content_type") or "application/octet-stream",
    )


def _media_files(value: Any, what: str = "media") -> tuple[MediaFile, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping | MediaFile):
        value = [value]
    if not isinstance(value, list | tuple):
        raise DecodeError(f"{what}: expected a list of media objects, got {type(value).__name__}")
    return tuple(_media_file(item, f"{what}[{i}]") for i, item in enumerate(value))


# --- the per-model hook that keeps extras ----------------------------------------------------

FieldHook = Callable[[Any, str], Any]


def _model_hook(cls: type[T], field_hooks: Mapping[Any, FieldHook]) -> Callable[..., T]:
    hints = get_type_hints(cls)
    aliases = ALIASES.get(cls, {})
    # (name, hook, when missing, what): "required" raises, "default" leaves it to attrs,
    # "none" → None; *what* names the field in errors (built once here, not per record).
    plan: list[tuple[str, FieldHook | None, str, str]] = []
    has_extras = False
    for field in attrs.fields(cast(Any, cls)):
        if field.name == "extras":
            has_extras = True
            continue
        hook = field_hooks.get(hints[field.name])
        if hook is None and field.converter is None:
            raise TypeError(f"no hook for {cls.__name__}.{field.name}: {hints[field.name]}")
        # A field without a hook has an attrs converter that checks it (NewRequest.attributes).
        if field.default is not attrs.NOTHING:
            missing = "default"
        else:
            missing = "none" if _optional(hints[field.name]) else "required"
        plan.append((field.name, hook, missing, f"{cls.__name__}.{field.name}"))
    known = {name for name, _, _, _ in plan} | {"extras"}
    name_of = cls.__name__
    absent = object()

    def structure(data: Any, _: Any = None) -> T:
        if not isinstance(data, dict):
            raise DecodeError(f"{name_of}: expected an object, got {type(data).__name__}")
        if aliases and not aliases.keys().isdisjoint(data):
            data = {
                (aliases[k] if k in aliases and aliases[k] not in data else k): v
                for k, v in data.items()
            }
        kwargs: dict[str, Any] = {}
        present = 0  # how many of data's keys are fields: all of them means no extras
        for name, hook, missing, what in plan:
            raw = data.get(name, absent)
            if raw is not absent:
                present += 1
                kwargs[name] = raw if hook is None else hook(raw, what)
            elif missing == "none":
                kwargs[name] = None
            elif missing == "required":
                raise DecodeError(f"{name_of}: missing required field {name!r}")
        if has_extras:
            if present == len(data):
                kwargs["extras"] = {}
                return cls(**kwargs)
            extras = {k: v for k, v in data.items() if k not in known}
            nested = data.get("extras")
            if isinstance(nested, dict):
                extras.update(nested)
            elif nested is not None:
                extras["extras"] = nested
            _check_depth(extras, name_of)
            kwargs["extras"] = extras
        return cls(**kwargs)

    return structure


#: Unknown fields are kept as sent, but nothing servers send nests this deep (Chicago's
#: extended_attributes and notes: three levels); deeper would only break json.dumps later.
MAX_EXTRAS_DEPTH = 32


def _check_depth(extras: dict[str, Any], name_of: str) -> None:
    """Refuse extras nested past MAX_EXTRAS_DEPTH (an iterative walk, bounded by the limit)."""
    pending: list[tuple[Any, int]] = [(v, 1) for v in extras.values() if isinstance(v, dict | list)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_EXTRAS_DEPTH:
            raise DecodeError(
                f"{name_of}: an unknown field nests deeper than {MAX_EXTRAS_DEPTH} levels"
            )
        children = value.values() if isinstance(value, dict) else value
        pending.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def _optional(tp: Any) -> bool:
    return type(None) in getattr(tp, "__args__", ())


# --- configuration ---------------------------------------------------------------------------


def configure_converter(conv: cattrs.Converter) -> None:
    """Install civic311's hooks on *conv* (see the module docstring for every decision)."""
    hooks: dict[Any, FieldHook] = {
        str: _text,
        str | None: _optional_text,
        bool: _bool,
        bool | None: _optional_bool,
        float | None: _optional_float,
        int | None: _optional_int,
        datetime | None: _optional_datetime,
        tuple[str, ...]: _keywords,
        Status | None: _open_type(Status),
        ServiceType | None: _open_type(ServiceType),
        AttributeDatatype: _open_type(AttributeDatatype),
        float: _optional_float,
        tuple[MediaFile, ...]: _media_files,
    }

    def seq_of(model: type[Any]) -> FieldHook:
        def hook(value: Any, what: str = "value") -> tuple[Any, ...]:
            if value is None:
                return ()
            if isinstance(value, dict):
                value = [value]  # a single child that escaped collapse
            if not isinstance(value, list | tuple):
                raise DecodeError(f"{what}: expected a list, got {type(value).__name__}")
            item_hook = model_hooks[model]
            return tuple(item_hook(item) for item in value)

        return hook

    model_hooks: dict[type[Any], Callable[..., Any]] = {}
    hooks[tuple[AttributeValue, ...]] = seq_of(AttributeValue)
    hooks[tuple[Attribute, ...]] = seq_of(Attribute)
    for model in MODELS:
        model_hooks[model] = _model_hook(model, hooks)
        conv.register_structure_hook(model, model_hooks[model])
    for tp, hook in hooks.items():
        # Predicate registration: parametrised generics (tuple[str, ...]) are not classes.
        conv.register_structure_hook_func(_is_exactly(tp), _adapt(hook))

    # Unstructuring: JSON-ready.
    conv.register_unstructure_hook(datetime, lambda d: d.isoformat())
    conv.register_unstructure_hook(MediaFile, _media_file_to_dict)
    for open_type in (Status, ServiceType, AttributeDatatype):
        conv.register_unstructure_hook(open_type, str)

    def is_model(tp: Any) -> bool:
        return tp in MODELS

    def model_unstructurer(tp: Any) -> Callable[[Any], dict[str, Any]]:
        return _unstructure_model(tp, conv)

    conv.register_unstructure_hook_factory(is_model, model_unstructurer)


def _is_exactly(expected: Any) -> Callable[[Any], bool]:
    def predicate(tp: Any) -> bool:
        return bool(tp == expected)

    return predicate


def _adapt(hook: FieldHook) -> Callable[[Any, Any], Any]:
    return lambda value, _type: hook(value, "value")


def _unstructure_model(cls: type[Any], conv: cattrs.Converter) -> Callable[[Any], dict[str, Any]]:
    names = [f.name for f in attrs.fields(cls)]

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            value = getattr(obj, name)
            if name == "extras":
                if value:
                    out["extras"] = dict(value)
                continue
            out[name] = _plain(value, conv)
        return out

    return unstructure


def _plain(value: Any, conv: cattrs.Converter) -> Any:
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v, conv) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v, conv) for k, v in value.items()}
    return conv.unstructure(value)


def make_converter() -> cattrs.Converter:
    """A new converter with civic311's hooks (for users who want to extend one)."""
    conv = cattrs.Converter()
    configure_converter(conv)
    return conv


#: The converter civic311 uses everywhere.
converter = make_converter()


def to_dict(model: Any) -> dict[str, Any]:
    """A JSON-ready dict of any civic311 model (ISO 8601 datetimes, extras under ``"extras"``).

    Raises:
        TypeError: *model* is not a civic311 model.
    """
    if type(model) not in MODELS:
        raise TypeError(f"to_dict takes a civic311 model, not {type(model).__name__}")
    result: dict[str, Any] = converter.unstructure(model)
    return result


def from_dict(model: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a *model* from `to_dict` output (or from a server's plain record).

    Raises:
        TypeError: *model* is not a civic311 model class.
        DecodeError: *data* does not have the model's shape.
        InvalidRequestError: for `NewRequest`, the data breaks its rules.
    """
    if model not in MODELS:
        raise TypeError(f"from_dict takes a civic311 model class, not {model!r}")
    if not isinstance(data, Mapping):
        raise DecodeError(f"{model.__name__}: expected a mapping, got {type(data).__name__}")
    result: T = converter.structure(dict(data), model)
    return result
