"""mkdocs hook: the API reference's table of every model's fields, made from the models.

A page holding the line ``<!-- model-fields -->`` gets, in its place, one table per model that
`civic311.to_dict` takes: each field's (wire) name, type and default. Made at build time from
``attrs.fields``, so the reference cannot fall behind the code (tests/test_docs.py checks it).
"""

from __future__ import annotations

from typing import Any

import attrs

MARKER = "<!-- model-fields -->"


def _default(field: attrs.Attribute[Any]) -> str:
    if field.default is attrs.NOTHING:
        return "required"
    if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
        return "empty"
    return f"`{field.default!r}`"


def _type(field: attrs.Attribute[Any]) -> str:
    text = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    return f"`{text}`".replace("|", "\\|") if text else ""


def model_fields() -> str:
    """The Markdown that replaces `MARKER`."""
    from civic311._wire.converter import MODELS

    parts: list[str] = []
    for model in MODELS:
        parts.append(f"### {model.__name__}\n")
        parts.append("| field | type | default |\n| --- | --- | --- |")
        parts.extend(
            f"| `{field.name}` | {_type(field)} | {_default(field)} |"
            for field in attrs.fields(model)
        )
        parts.append("")
    return "\n".join(parts)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Put the tables where a page asks for them."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, model_fields())
