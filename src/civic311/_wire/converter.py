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

Lists decode through one generated function per model (`_fast_model_hook`): each field's
common case inline, anything unusual handed to the tolerant hooks above, so every decision is
theirs (issue 13: decoding 10k requests went from ~4.9x `json.loads` to ~2.4x).

Unstructuring (`to_dict`) gives JSON-ready dicts: ISO 8601 datetimes, lists for tuples, plain
strings for the open types, ``extras`` nested under ``"extras"``. `from_dict` reads that back,
strictly for `NewRequest` (input: an unknown key, a missing or unreadable field is an
`InvalidRequestError` naming it) and as tolerantly as a city's answer for the other models.

A `NewRequest`'s files (`MediaFile`) travel whole, so a request parked in the outbox or handed to
a task queue keeps its photo: each is ``{"filename", "content_type", "content_base64"}``, the
bytes in standard base64 (about a third larger than the file; mind it when you store many).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import enum
import functools
import linecache
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import partial
from typing import Any, NamedTuple, TypeVar, cast, get_type_hints

import attrs
import cattrs

from civic311._w3c import format_datetime, parse_datetime
from civic311.errors import DecodeError, InvalidRequestError
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
    "structurer",
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

    _OPEN_TYPE_HOOKS.add(hook)
    return hook


#: The hooks `_open_type` made: the fast structure functions cache what these return.
_OPEN_TYPE_HOOKS: set[Callable[[Any, str], Any]] = set()


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


class _Plan(NamedTuple):
    """How one model is read: its fields in order, and what keeps the rest."""

    #: (name, hook, when missing, what): "required" raises, "default" leaves it to attrs,
    #: "none" → None; *what* names the field in errors (built once, not per record).
    fields: list[tuple[str, FieldHook | None, str, str]]
    aliases: dict[str, str]
    has_extras: bool
    #: Every key that is not an extra (the fields, and "extras" itself).
    known: frozenset[str]


def _plan(cls: type[Any], field_hooks: Mapping[Any, FieldHook]) -> _Plan:
    hints = get_type_hints(cls)
    fields: list[tuple[str, FieldHook | None, str, str]] = []
    has_extras = False
    for field in attrs.fields(cls):
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
        fields.append((field.name, hook, missing, f"{cls.__name__}.{field.name}"))
    known = frozenset({name for name, _, _, _ in fields} | {"extras"})
    return _Plan(fields, ALIASES.get(cls, {}), has_extras, known)


def _extras_of(data: dict[str, Any], known: frozenset[str], name_of: str) -> dict[str, Any]:
    """The keys of *data* that are no field (a nested ``"extras"`` object merged in)."""
    extras = {k: v for k, v in data.items() if k not in known}
    nested = data.get("extras")
    if isinstance(nested, dict):
        extras.update(nested)
    elif nested is not None:
        extras["extras"] = nested
    _check_depth(extras, name_of)
    return extras


def _model_hook(cls: type[T], field_hooks: Mapping[Any, FieldHook]) -> Callable[..., T]:
    """The tolerant structure function of *cls*: every field through its hook, by the rules
    in the module docstring. The fast one (`_fast_model_hook`) hands anything unusual here."""
    fields, aliases, has_extras, known = _plan(cls, field_hooks)
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
        for name, hook, missing, what in fields:
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
            kwargs["extras"] = _extras_of(data, known, name_of)
        return cls(**kwargs)

    return structure


# The fast structure function. Decoding lists is the hot path of harvests and web back ends
# (issue 13: 10k requests took ~4.9x json.loads, most of it one Python call per field, the
# cattrs dispatch, and the frozen attrs __init__). cattrs' own `make_dict_structure_fn`
# generates one function per class too, but it calls a hook per field, which is exactly the
# cost to remove, and it knows neither extras nor aliases. So, in cattrs' and attrs' manner,
# one function per model is generated from source: each field's common case inline (a str
# that only needs trimming, a float that is finite, a datetime in the one shape nearly every
# server writes, a status seen before), every other value through the field's tolerant hook,
# and any surprise at all (a missing required field, an alias, a non-dict, a hook or
# fromisoformat raising) hands the whole record to `_model_hook`, which decides as before and
# raises its own error. Instances are built without the frozen __init__ (which sets each
# field through object.__setattr__): object.__new__, then each slot's descriptor, as attrs'
# own __init__ would, for classes with no validator, converter or __attrs_post_init__.

#: The W3C datetime shapes that take the inline path, told by their separators alone (the
#: characters at 4, 7, 10, … - ``v[4::3]`` - and the length): ``YYYY-MM-DDTHH:MM:SS`` with
#: ``±HH:MM``, with ``Z``, or with no zone. A regex match costs more than the parse, and is not
#: needed: fromisoformat reads only ASCII digits between these separators, so whenever it
#: succeeds the string is exactly one `parse_datetime` sends down the same fromisoformat branch
#: (an offset as is; a "Z", which Python 3.10's fromisoformat does not read, as the first 19
#: characters in UTC; no zone, in UTC), and whenever it fails the record goes the tolerant way.
_OFFSET_SHAPES = frozenset({"--T::+:", "--T::-:"})
_UTC_SHAPE = "--T::Z"
_PLAIN_SHAPE = "--T::"

#: Open-type values (statuses, service types, datatypes) already built, per model field: a
#: server uses a handful, so the same `Status` is shared instead of built per record. Bounded,
#: so a server sending a new status per record cannot grow it without limit.
OPEN_TYPE_CACHE_SIZE = 256


class _Fallback(Exception):
    """Raised inside a fast structure function: let the tolerant one read this record."""


def _fast_model_hook(
    cls: type[T], field_hooks: Mapping[Any, FieldHook], tolerant: Callable[..., T]
) -> Callable[..., T] | None:
    """*cls*'s generated structure function, or None when *cls* needs its __init__."""
    model: Any = cls  # an attrs class (mypy cannot see that through type[T])
    if any(f.validator or f.converter for f in attrs.fields(model)) or hasattr(
        cls, "__attrs_post_init__"
    ):
        return None
    fields, aliases, has_extras, known = _plan(cls, field_hooks)
    field_names = known - {"extras"}
    if aliases.keys() & field_names:  # pragma: no cover - a guard for whoever edits ALIASES
        raise TypeError(f"{cls.__name__}: an alias is also a field name")
    layouts: dict[tuple[Any, ...], Any] = {}
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_cls": cls,
        "_tolerant": tolerant,
        "_Fallback": _Fallback,
        "_absent": _ABSENT,
        "_layouts": layouts,
        "_layout": partial(_layout, layouts, field_names, frozenset(aliases)),
        "_irregular": _IRREGULAR,
        "_scalar_types": _SCALAR_TYPES,
        "_check_depth": _check_depth,
        "_name_of": cls.__name__,
        "_offset_shapes": _OFFSET_SHAPES,
        "_utc_shape": _UTC_SHAPE,
        "_plain_shape": _PLAIN_SHAPE,
        "_fromiso": datetime.fromisoformat,
        "_utc": timezone.utc,
        "_str": str,
        "_float": float,
        "_cache_size": OPEN_TYPE_CACHE_SIZE,
        "_function": type(_fast_model_hook),
        "_hits": {},
        "_specialize_after": SPECIALIZE_AFTER,
        "_layout_cache_size": LAYOUT_CACHE_SIZE,
        # Per number of keys, the layout function that last read a record with that many: tried
        # first (a len() and a dict look-up, where the key tuple costs ~270 ns a record).
        "_by_len": {},
        "_guessable": set(),
        "_miss": _MISS,
    }
    body: list[str] = []
    for index, (name, hook, missing, what) in enumerate(fields):
        lines = _field_lines(cls, index, name, hook, missing, what, namespace)
        if lines is None:
            return None
        body += [*lines, f"_s{index}(obj, v)"]
    source_lines = [
        "def structure(data, _=None):",
        "    if data.__class__ is not dict:",
        "        return _tolerant(data)",
        "    guess = _by_len.get(len(data))",
        "    if guess is not None:  # records with as many keys mostly share a layout",
        "        obj = guess(data, True)",
        "        if obj is not _miss:",
        "            return obj",
        "    try:",
        "        keys = tuple(data)",
        "        extra_keys = _layouts.get(keys)",
        "        if extra_keys is None:",
        "            extra_keys = _layout(keys)",
        "        elif extra_keys.__class__ is _function:  # this layout's own function",
        "            if extra_keys in _guessable:",
        "                _by_len[len(keys)] = extra_keys",
        "            return extra_keys(data)",
        "        if extra_keys is not _irregular and len(_hits) < _layout_cache_size:",
        "            hits = _hits[keys] = _hits.get(keys, 0) + 1",
        "            if hits == _specialize_after:",
        "                _specialize(keys, extra_keys)",
        "        if not extra_keys:",
        "            extras = {}",
        "        elif extra_keys is _irregular:",
        "            return _tolerant(data)",
        "        elif len(extra_keys) == 1:  # the usual case, inline",
        "            key = extra_keys[0]",
        "            value = data[key]",
        "            extras = {key: value}",
        "            if value.__class__ not in _scalar_types:",
        "                _check_depth(extras, _name_of)",
        "        else:",
        "            extras = {key: data[key] for key in extra_keys}",
        "            if not _scalar_types.issuperset(map(type, extras.values())):",
        "                _check_depth(extras, _name_of)",
        "        obj = _new(_cls)",
        "        get = data.get",
        *("        " + line for line in body),
    ]
    if has_extras:
        namespace["_set_extras"] = cls.__dict__["extras"].__set__
        source_lines.append("        _set_extras(obj, extras)")
    source_lines += [
        "    except Exception:",
        "        return _tolerant(data)",
        "    return obj",
    ]
    structure: Callable[..., T] = _compile(source_lines, f"{cls.__qualname__}", namespace)
    structure.__doc__ = f"Structure a {cls.__name__} from plain data (generated; see converter.py)."

    def specialize(keys: tuple[Any, ...], extra_keys: tuple[Any, ...]) -> None:
        """Put a function of its own in place of layout *keys* (once seen often enough)."""
        specialized = sum(1 for entry in layouts.values() if callable(entry))
        if specialized >= SPECIALIZED_LAYOUTS or keys not in layouts:
            return
        present = set(keys)
        lines = ["    obj = _new(_cls)"]
        for index, (name, hook, missing, what) in enumerate(fields):
            if missing == "required" and name not in present:
                return  # the tolerant function raises for these records
            field_lines = _field_lines(
                cls, index, name, hook, missing, what, namespace, name in present
            )
            assert field_lines is not None  # (generated once above already)
            lines += ["    " + line for line in [*field_lines, f"_s{index}(obj, v)"]]
        if not has_extras:  # still read, so a guessed record proves it has every key
            lines += [f"    data[{key!r}]" for key in extra_keys]
        if has_extras:
            items = ", ".join(f"{key!r}: data[{key!r}]" for key in extra_keys)
            lines.append(f"    extras = {{{items}}}")
            if extra_keys:
                lines += [
                    "    if not _scalar_types.issuperset(map(type, extras.values())):",
                    "        _check_depth(extras, _name_of)",
                ]
            lines.append("    _set_extras(obj, extras)")
        # Called with guess=True on a record whose layout was not looked up (one with as many
        # keys): it answers `_MISS` unless the record holds exactly this layout's keys. It
        # reads every key of the layout, so with as many keys as the layout, a record that
        # reads without a KeyError has the same keys; their order matters only to ``extras``,
        # so only layouts with at most one extra are guessed (`_guessable`).
        source_lines = [
            "def specialized(data, guess=False):",
            f"  if guess and len(data) != {len(keys)}:",
            "    return _miss",
            "  try:",
            *("  " + line for line in lines),
            "  except KeyError:",
            "    return _miss if guess else _tolerant(data)",
            "  except Exception:",
            "    return _tolerant(data)",
            "  return obj",
        ]
        name = f"{cls.__qualname__} layout {len(layouts)}"
        layouts[keys] = function = _compile(source_lines, name, namespace, "specialized")
        # Only where a record's key order cannot show: with two extras or more, their order
        # in ``extras`` is the record's, which only the key tuple tells.
        if not has_extras or len(extra_keys) <= 1:
            namespace["_guessable"].add(function)

    namespace["_specialize"] = specialize
    return structure


def _compile(
    source_lines: list[str], name: str, namespace: dict[str, Any], function: str = "structure"
) -> Any:
    """The function *function* that *source_lines* define, run in *namespace*."""
    source = "\n".join(source_lines) + "\n"
    filename = f"<civic311 generated structure {name}>"
    # Registered with linecache (as attrs does) so tracebacks and profilers show the source.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated source
    return namespace.pop(function)


def _field_lines(
    cls: type[Any],
    index: int,
    name: str,
    hook: FieldHook | None,
    missing: str,
    what: str,
    namespace: dict[str, Any],
    present: bool | None = None,
) -> list[str] | None:
    """The generated lines reading field *name* of ``data`` into ``v``: *present* None, from
    any record (with ``get``, which is ``data.get``); True or False, from a record known to
    hold it or not (a layout's own function). None: this field cannot be generated."""
    field = attrs.fields_dict(cls)[name]
    hook_name = f"_h{index}"
    namespace[hook_name] = hook
    namespace[f"_s{index}"] = cls.__dict__[name].__set__  # the slot's member descriptor
    call = f"{hook_name}(v, {what!r})"
    # A field that is None when missing and whose hook maps None to None reads with .get().
    none_if_missing = missing == "none" or (missing == "default" and field.default is None)
    kind = _INLINE_KINDS.get(hook) if hook is not None and none_if_missing else None
    if kind is None and hook is not None and none_if_missing and hook in _OPEN_TYPE_HOOKS:
        kind = "open"
    convert: list[str] = []
    if kind == "text":
        convert = [
            "if v is not None:",
            f"    v = (v.strip() or None) if v.__class__ is _str else {call}",
        ]
    elif kind == "float":
        # v - v == 0.0 is False for NaN and the infinities: a finite check, inline. XML gives
        # numbers as text: float() reads it as the hook does (it ignores the same whitespace
        # str.strip() removes); "" or "north" make float() raise, and the record goes the
        # tolerant way.
        convert = [
            "if v is not None and (v.__class__ is not _float or v - v != 0.0):",
            "    if v.__class__ is _str:",
            "        v = _float(v)",
            "        if v - v != 0.0:",
            "            raise _Fallback",
            "    else:",
            f"        v = {call}",
        ]
    elif kind == "datetime":
        convert = [
            "if v is not None:",
            "    shape = v[4::3] if v.__class__ is _str else None",
            "    if shape in _offset_shapes and len(v) == 25:",
            "        v = _fromiso(v)",
            "    elif shape == _utc_shape and len(v) == 20:",
            "        v = _fromiso(v[:19]).replace(tzinfo=_utc)",
            "    elif shape == _plain_shape and len(v) == 19:",
            "        v = _fromiso(v).replace(tzinfo=_utc)",
            "    else:",
            f"        v = {call}",
        ]
    elif kind == "open":
        cache = f"_c{index}"
        namespace[cache] = {}
        convert = [
            "if v is not None:",
            f"    t = {cache}.get(v) if v.__class__ is _str else None",
            "    if t is None:",
            f"        t = {call}",
            f"        if t is not None and v.__class__ is _str and len({cache}) < _cache_size:",
            f"            {cache}[v] = t",
            "    v = t",
        ]
    if kind is not None:
        if present is None:
            return [f"v = get({name!r})", *convert]
        return [f"v = data[{name!r}]", *convert] if present else ["v = None"]
    if missing == "required":
        when_missing = "raise _Fallback"
    elif missing == "none":
        when_missing = "v = None"
    elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
        if field.default.takes_self:  # type: ignore[union-attr]
            return None
        namespace[f"_d{index}"] = field.default.factory  # type: ignore[union-attr]
        when_missing = f"v = _d{index}()"
    else:
        namespace[f"_d{index}"] = field.default
        when_missing = f"v = _d{index}"
    if present is False:
        return [when_missing]
    if present:
        return [f"v = data[{name!r}]"] + ([f"v = {call}"] if hook is not None else [])
    read = [f"v = get({name!r}, _absent)", "if v is _absent:", f"    {when_missing}"]
    if hook is not None:
        read += ["else:", f"    v = {call}"]
    return read


_ABSENT = object()

#: What a layout's own function answers when a guessed record does not have its layout.
_MISS: Any = object()


#: The hooks whose common case the generated functions inline.
_INLINE_KINDS: dict[FieldHook, str] = {
    _optional_text: "text",
    _optional_datetime: "datetime",
    _optional_float: "float",
}


#: Key layouts remembered per model. A server writes its records with the same keys in the
#: same order, so which keys are extras is worked out once per layout; a record's layout is
#: looked up by the tuple of its keys, whose strings the JSON decoder has already shared and
#: hashed. Bounded: past it, layouts are worked out afresh each time.
LAYOUT_CACHE_SIZE = 64

#: A layout seen this many times gets a function of its own: its fields read by subscript, its
#: missing ones set to None without a look-up, its extras built by a dict display (about 20%
#: faster a record than the function for any layout). At most SPECIALIZED_LAYOUTS per model;
#: compiling one costs about a millisecond.
SPECIALIZE_AFTER = 8
SPECIALIZED_LAYOUTS = 8

#: A layout the generated function does not read: an alias, a nested "extras" object, a key
#: that is not a str.
_IRREGULAR: Any = ("irregular",)

#: Extras of only these types need no depth check (`_check_depth` looks into dicts and lists).
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _layout(
    layouts: dict[tuple[Any, ...], tuple[Any, ...]],
    fields: frozenset[str],
    aliases: frozenset[str],
    keys: tuple[Any, ...],
) -> tuple[Any, ...]:
    """The extras' keys in *keys* (in order), or `_IRREGULAR` when the tolerant function must
    read a record with these keys."""
    extra = tuple(k for k in keys if k not in fields)
    irregular = (
        "extras" in extra
        or not aliases.isdisjoint(extra)
        # Keys that are not plain str (from_dict of a user's dict): 1 == True, and a str
        # subclass equals its text, so tuples of them could match another layout.
        or any(type(k) is not str for k in keys)
    )
    layout = _IRREGULAR if irregular else extra
    if len(layouts) < LAYOUT_CACHE_SIZE:
        layouts[keys] = layout
    return layout


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


def _value_hooks() -> dict[Any, FieldHook]:
    """The hook of each field type (see the module docstring for every decision)."""
    return {
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


def configure_converter(conv: cattrs.Converter) -> dict[type[Any], Callable[..., Any]]:
    """Install civic311's hooks on *conv* (see the module docstring for every decision).

    Returns:
        Each model's structure function, for loops that look it up once (`structurer`).
    """
    hooks = _value_hooks()

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
        model_hooks[model] = _on_first_use(model, hooks, model_hooks)
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
    return model_hooks


def _on_first_use(
    model: type[Any],
    hooks: dict[Any, FieldHook],
    model_hooks: dict[type[Any], Callable[..., Any]],
) -> Callable[..., Any]:
    """A structure function for *model* that builds the real ones on its first call and puts
    them in its place: generating them costs milliseconds, which `import civic311` should not
    pay for models a program never decodes."""
    built: list[Callable[..., Any]] = []

    def structure(data: Any, _: Any = None) -> Any:
        if not built:
            # Two threads may both build one; either is right. cattrs keeps calling this
            # function (its registrations are not changed after configuration); `structurer`
            # and the sequence hooks read *model_hooks*, and get the built one directly.
            tolerant = _model_hook(model, hooks)
            built.append(_fast_model_hook(model, hooks, tolerant) or tolerant)
            model_hooks[model] = built[0]
        return built[0](data)

    return structure


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
    if isinstance(value, enum.Enum):  # first: EndpointState is a str too
        return _plain(value.value, conv)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v, conv) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v, conv) for k, v in value.items()}
    if type(value) in MODELS or isinstance(value, MediaFile):
        return conv.unstructure(value)
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name), conv) for f in attrs.fields(type(value))}
    return conv.unstructure(value)


def make_converter() -> cattrs.Converter:
    """A new converter with civic311's hooks (for users who want to extend one)."""
    conv = cattrs.Converter()
    configure_converter(conv)
    return conv


#: The converter civic311 uses everywhere.
converter = cattrs.Converter()
_STRUCTURERS = configure_converter(converter)


def structurer(model: type[T]) -> Callable[[dict[str, Any]], T]:
    """`converter`'s structure function for *model*: what ``converter.structure(record,
    model)`` runs, without cattrs' dispatch per call (decoding a list calls it per record)."""
    hook: Callable[[dict[str, Any]], T] = _STRUCTURERS[model]
    return hook


def to_dict(model: Any) -> dict[str, Any]:
    """A JSON-ready dict of any civic311 model or record (ISO 8601 datetimes, extras under
    ``"extras"``): the GeoReport models, and every other attrs class civic311 exports
    (`EndpointHealth`, `Problem`, `Attempt`, `StatusChange`, `OutboxEntry`…). In those, an
    enumeration is its value, an exception ``{"type": its class name, "message": its text}``
    and a `MediaFile` its name, content type and base64 bytes.

    Raises:
        TypeError: *model* is not a civic311 model or record.
    """
    cls = type(model)
    if cls in MODELS:
        result: dict[str, Any] = converter.unstructure(model)
        return result
    if attrs.has(cls) and cls.__module__.split(".")[0] == "civic311":
        plain: dict[str, Any] = _plain(model, converter)
        return plain
    raise TypeError(f"to_dict takes a civic311 model, not {cls.__name__}")


def from_dict(model: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a *model* from `to_dict` output (or from a server's plain record).

    `NewRequest` is input (a web form, a queued job), so it is read strictly: a key that is no
    field (``"descripton"``), a missing ``service_code`` or a value that cannot be read raise
    `InvalidRequestError` naming the field. The models a city sends are read as tolerantly as
    its answers, unknown keys kept in ``extras``.

    Raises:
        TypeError: *model* is not a civic311 model class.
        DecodeError: *data* does not have the model's shape (any model but `NewRequest`).
        InvalidRequestError: for `NewRequest`, the data is not a valid request.
    """
    if model not in MODELS:
        raise TypeError(f"from_dict takes a civic311 model class, not {model!r}")
    if model is NewRequest:
        return cast(T, _new_request_from(data))
    if not isinstance(data, Mapping):
        raise DecodeError(f"{model.__name__}: expected a mapping, got {type(data).__name__}")
    result: T = converter.structure(dict(data), model)
    return result


@functools.cache
def _new_request_fields() -> dict[str, FieldHook | None]:
    """NewRequest's fields: the value hook of each (None: its attrs converter reads the value)."""
    return {name: hook for name, hook, _, _ in _plan(NewRequest, _value_hooks()).fields}


def _new_request_from(data: object) -> NewRequest:
    """A `NewRequest` from plain data, strictly (see `from_dict`)."""
    if not isinstance(data, Mapping):
        raise InvalidRequestError(
            "data", f"must be a mapping of NewRequest fields, not {type(data).__name__}"
        )
    fields = _new_request_fields()
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidRequestError(str(key), f"is not a field of NewRequest{hint}")
    if data.get("service_code") is None:
        raise InvalidRequestError("service_code", "is required")
    kwargs: dict[str, Any] = {}
    for name, hook in fields.items():
        if name not in data:
            continue  # its default
        value = data[name]
        if hook is None:
            kwargs[name] = value
            continue
        try:
            kwargs[name] = hook(value, name)
        except DecodeError as exc:
            # The hook names the value it read ("lat", "media[0]"); that is the field.
            field, _, message = str(exc).partition(": ")
            raise InvalidRequestError(field or name, message or str(exc)) from None
    return NewRequest(**kwargs)
