"""Response bodies: the spec's shapes (reference §2-§5), bent by the city's `Dialect`.

Each builder returns a `Reply` (status, headers, body). Bodies are built as plain trees in the
spec's field order and written by `_wire.to_xml` / `_wire.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import attrs

from civic311.testing._dialect import Dialect
from civic311.testing._model import ServiceSpec, StoredRequest
from civic311.testing._wire import Node, format_datetime, to_json, to_xml

__all__ = ["Format", "Renderer", "Reply", "html_page", "text_reply"]

Format = Literal["xml", "json"]

# Ids, tokens and value keys are written as JSON numbers in the `numeric_ids` dialect (§10.13).
_ID_FIELDS = frozenset({"service_request_id", "token", "key"})


@attrs.frozen
class Reply:
    """A complete HTTP answer: status, headers (Content-Length is added when sent), body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header with this name (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def text_reply(status: int, text: str, *, extra: Sequence[tuple[str, str]] = ()) -> Reply:
    """A ``text/plain; charset=utf-8`` answer."""
    return Reply(
        status, (("Content-Type", "text/plain; charset=utf-8"), *extra), text.encode("utf-8")
    )


def html_page(
    status: int, title: str, message: str, *, extra: Sequence[tuple[str, str]] = ()
) -> Reply:
    """A small ``text/html`` page, the kind proxies and maintenance screens send."""
    body = (
        "<!DOCTYPE html>\n<html><head><title>"
        f"{title}</title></head>\n<body><h1>{title}</h1>\n<p>{message}</p>\n</body></html>\n"
    )
    return Reply(status, (("Content-Type", "text/html; charset=utf-8"), *extra), body.encode())


def _strip_empty(node: Node) -> Node:
    if isinstance(node, Mapping):
        return {k: _strip_empty(v) for k, v in node.items() if v is not None}
    if isinstance(node, (list, tuple)):
        return [_strip_empty(v) for v in node]
    return node


class Renderer:
    """Builds the answers for one request, in one format, under one dialect."""

    def __init__(self, dialect: Dialect, fmt: Format) -> None:
        self.dialect = dialect
        self.fmt = fmt

    # -- scalars -----------------------------------------------------------------------------

    def boolean(self, value: bool) -> bool | str:
        """A boolean, or in the `string_booleans` dialect the strings "true" / "False"."""
        if self.fmt == "json" and self.dialect.string_booleans:
            return "true" if value else "False"
        return value

    def ident(self, value: str) -> str | int:
        """An id or key: a string, or a JSON number in the `numeric_ids` dialect when it can be
        one without losing anything (all digits, no leading zero)."""
        if (
            self.fmt == "json"
            and self.dialect.numeric_ids
            and value.isdigit()
            and value.isascii()
            and (value == "0" or not value.startswith("0"))
        ):
            return int(value)
        return value

    def when(self, value: datetime | None) -> str | None:
        """A datetime in the dialect's style (``…Z`` by default, §10.28)."""
        if value is None:
            return None
        return format_datetime(value, self.dialect.datetime_style, self.dialect.utc_offset_minutes)

    # -- bodies ------------------------------------------------------------------------------

    @property
    def content_type(self) -> str:
        """The Content-Type of this format (§1.2, or the dialect's override)."""
        if self.fmt == "xml":
            return self.dialect.xml_content_type
        return self.dialect.json_content_type

    def _reply(
        self,
        status: int,
        xml_root: str,
        node: Node,
        json_wrapper: str | None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> Reply:
        if self.dialect.omit_empty:
            node = _strip_empty(node)
        if self.fmt == "xml":
            body = to_xml(xml_root, node)
        else:
            if json_wrapper is not None and self.dialect.wrapped_json:
                node = {json_wrapper: node}
            body = to_json(node)
        return Reply(status, (("Content-Type", self.content_type), *extra), body)

    def services(self, services: Sequence[ServiceSpec]) -> Reply:
        """GET services (§2.1): ``<services><service>…`` / a JSON array."""
        items: list[Node] = [
            {
                "service_code": s.service_code,
                "service_name": s.service_name,
                "description": s.description,
                "metadata": self.boolean(s.metadata),
                "type": s.type,
                "keywords": s.keywords,
                "group": s.group,
            }
            for s in services
        ]
        return self._reply(200, "services", items, "services")

    def definition(self, service: ServiceSpec) -> Reply:
        """GET services/{code} (§2.2): ``<service_definition>`` / a JSON object."""
        attributes: list[Node] = []
        for a in service.attributes:
            item: dict[str, Node] = {
                "variable": self.boolean(a.variable),
                "code": a.code,
                "datatype": a.datatype,
                "required": self.boolean(a.required),
                "datatype_description": a.datatype_description,
                "order": a.order,
                "description": a.description,
            }
            if a.values:
                item["values"] = [{"key": self.ident(v.key), "name": v.name} for v in a.values]
            attributes.append(item)
        node: Node = {"service_code": service.service_code, "attributes": attributes}
        return self._reply(200, "service_definition", node, "service_definition")

    def request_list(
        self,
        items: Sequence[Mapping[str, Node]],
        status: int = 200,
        *,
        extra: Sequence[tuple[str, str]] = (),
    ) -> Reply:
        """Any list of ``<request>`` items (§4.2): POST answers, tokens, GET requests."""
        return self._reply(
            status, self.dialect.requests_root, list(items), "service_requests", extra
        )

    def record(self, r: StoredRequest, now: datetime, *, with_id: bool = True) -> dict[str, Node]:
        """One request as GET requests shows it at *now* (§3.4), in the spec's field order."""
        node: dict[str, Node] = {}
        if with_id:
            node["service_request_id"] = self.ident(r.service_request_id)
        node.update(
            {
                "status": r.status_at(now),
                "status_notes": r.status_notes_at(now),
                "service_name": r.service_name,
                "service_code": r.service_code,
                "description": r.description,
                "agency_responsible": r.agency_responsible,
                "service_notice": r.service_notice,
                "requested_datetime": self.when(r.requested_datetime),
                "updated_datetime": self.when(r.updated_at(now)),
                "expected_datetime": self.when(r.expected_datetime),
                "address": r.address,
                "address_id": r.address_id,
                "zipcode": r.zipcode,
                "lat": r.lat,
                "long": r.long,
                "media_url": r.media_url,
            }
        )
        return node

    def errors(self, errors: Sequence[tuple[int, str]]) -> Reply:
        """An error answer (§5) in the dialect's error shape; HTTP status = the first code."""
        status = errors[0][0]
        joined = "; ".join(d for _, d in errors)
        shape = self.dialect.error_shape
        ctype = (("Content-Type", self.content_type),)
        if self.fmt == "json":
            node: Node
            if shape == "spec":
                node = [{"code": c, "description": d} for c, d in errors]
            elif shape == "code_detail":
                node = {"code": status, "detail": joined}
            elif shape == "fms":
                node = {"errors": {"code": status, "description": joined}}
            elif shape == "markaspot":
                node = {"error": {"code": status, "message": joined}}
            else:
                node = [{"description": d} for _, d in errors]
            return Reply(status, ctype, to_json(node))
        if shape == "code_detail":
            body = to_xml("error", {"code": status, "detail": joined})
        elif shape == "markaspot":
            body = to_xml("error", {"code": status, "message": joined})
        elif shape == "description_only":
            body = to_xml("errors", [{"description": d} for _, d in errors])
        else:
            body = to_xml("errors", [{"code": c, "description": d} for c, d in errors])
        return Reply(status, ctype, body)
