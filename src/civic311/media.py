"""Files to upload with a service request: `MediaFile`.

GeoReport v2 itself knows only ``media_url``, the URL of a photo hosted elsewhere (spec §3.5).
Cities in the wild also take the file itself, as a part of a ``multipart/form-data`` POST
(reference §10.36):

- Bloomington uReport takes **one** file in a part named ``media`` (§8.6);
- Helsinki, 6aika/Turku and the GeoReport v2.1 draft take **several**, as ``media[]`` parts
  or repeated ``media`` parts (§8.2, §8.5);
- FixMyStreet sends several photos as repeated ``media_url`` fields instead (§3.5, §8.7).

A `MediaFile` is the file, held in memory and checked when built: it has a name, some bytes and
a content type. Attach files to a request with ``NewRequest(..., media=[...])``; how they travel
is the city's business (its profile's media style, `civic311.Profile.media`). The default
profile is the spec's, which takes no files: a file is refused before sending, with the
profiles that take them named (``Client(url, profile="bloomington")`` for one file,
``"helsinki"`` for several; docs/photos.md)::

    photo = MediaFile.from_path("pothole.jpg")                 # image/jpeg, read now
    photo = MediaFile.from_bytes(data, "pothole.jpg")           # bytes you already have
    with open("pothole.jpg", "rb") as fh:
        photo = MediaFile.from_file(fh)                         # any binary file object

Each constructor refuses, with `InvalidRequestError` naming ``media`` and the file: an empty
file, a file over *max_bytes* (10 MiB unless you say otherwise; a city's own limit may be lower
or higher — 6aika takes 100 MB), and a text-mode file object (open it with ``"rb"``).
"""

from __future__ import annotations

import io
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import attrs

from civic311._regex import on_first_use
from civic311.errors import InvalidRequestError

__all__ = ["DEFAULT_CONTENT_TYPE", "MAX_MEDIA_BYTES", "MediaFile"]

#: The default cap on one file's size: 10 MiB, more than any phone photo needs.
MAX_MEDIA_BYTES = 10 * 1024 * 1024

#: The content type of a file whose type cannot be told from its name.
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_FIELD = "media"

# type "/" subtype, then optional ";"-separated parameters (RFC 9110 §8.3), no control chars.
_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"


_content_type = on_first_use(rf"{_NAME}/{_NAME}(\s*;\s*{_NAME}=(\"[^\"\x00-\x1f]*\"|{_NAME}))*")
_control = on_first_use(r"[\x00-\x1f\x7f]")


def _size(content: bytes) -> str:
    return f"<{len(content)} bytes>"


def _to_bytes(value: object) -> bytes:
    # bytearray and memoryview are welcome; they are copied into immutable bytes.
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidRequestError(
        _FIELD,
        f"content must be bytes, not {type(value).__name__}"
        + (" (encode text first, or use MediaFile.from_path)" if isinstance(value, str) else ""),
    )


def _check_filename(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise InvalidRequestError(_FIELD, f"filename must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidRequestError(_FIELD, "filename must not be empty")
    if _control().search(value):
        raise InvalidRequestError(_FIELD, f"filename {value!r} contains control characters")
    if "/" in value or "\\" in value:
        # A multipart part carries a bare name (RFC 7578 §4.2); a path would leak the
        # sender's directories to the city.
        raise InvalidRequestError(
            _FIELD, f"filename {value!r} must be a bare file name, not a path"
        )


def _check_content(instance: object, attribute: attrs.Attribute[Any], value: bytes) -> None:
    if not value:
        name = getattr(instance, "filename", "?")
        raise InvalidRequestError(_FIELD, f"{name}: the file is empty")


def _check_content_type(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = getattr(instance, "filename", "?")
    if not isinstance(value, str):
        raise InvalidRequestError(
            _FIELD, f"{name}: content_type must be a string, not {type(value).__name__}"
        )
    if not _content_type().fullmatch(value):
        raise InvalidRequestError(
            _FIELD, f"{name}: content_type {value!r} is not a media type such as image/jpeg"
        )


def _guess(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def _check_cap(filename: str, size: int, max_bytes: int) -> None:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InvalidRequestError("max_bytes", f"must be a positive int, got {max_bytes!r}")
    if size > max_bytes:
        raise InvalidRequestError(
            _FIELD, f"{filename}: {size} bytes is over the limit of {max_bytes} bytes"
        )


@attrs.frozen
class MediaFile:
    """One file to upload with a `NewRequest`: a bare file name, the bytes, a content type.

    Build it with `from_path`, `from_bytes` or `from_file` (they guess the content type from the
    name and enforce a size cap), or directly when you know all three. Either way it checks
    itself: a non-empty bare file name, non-empty bytes, a well-formed media type. Its repr
    shows the size, never the bytes.

    Attributes:
        filename: The name the city sees (``pothole.jpg``), never a path.
        content: The file's bytes.
        content_type: Its media type (``image/jpeg``).
    """

    filename: str = attrs.field(validator=_check_filename)
    content: bytes = attrs.field(converter=_to_bytes, validator=_check_content, repr=_size)
    content_type: str = attrs.field(default=DEFAULT_CONTENT_TYPE, validator=_check_content_type)

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return len(self.content)

    @classmethod
    def from_bytes(
        cls,
        data: bytes | bytearray | memoryview,
        filename: str,
        content_type: str | None = None,
        *,
        max_bytes: int = MAX_MEDIA_BYTES,
    ) -> MediaFile:
        """A file from bytes in memory; the content type is guessed from *filename* if not given.

        Raises:
            InvalidRequestError: empty data, over *max_bytes*, or a bad name or type.
        """
        content = _to_bytes(data)
        if isinstance(filename, str):
            _check_cap(filename, len(content), max_bytes)
        return cls(
            filename=filename,
            content=content,
            content_type=content_type if content_type is not None else _guess(str(filename)),
        )

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        content_type: str | None = None,
        *,
        max_bytes: int = MAX_MEDIA_BYTES,
    ) -> MediaFile:
        """Read the file at *path* now; its name is the path's last part.

        The size is checked before reading, so a huge file is refused without loading it.

        Raises:
            InvalidRequestError: the file cannot be read, is empty, or is over *max_bytes*.
        """
        file_path = Path(path)
        name = file_path.name
        try:
            size = file_path.stat().st_size
            _check_cap(name, size, max_bytes)
            with file_path.open("rb") as fh:
                content = fh.read(max_bytes + 1)
        except OSError as exc:
            raise InvalidRequestError(
                _FIELD, f"{file_path}: cannot read the file ({exc.strerror or exc})"
            ) from exc
        _check_cap(name, len(content), max_bytes)  # it may have grown since stat()
        return cls.from_bytes(content, name, content_type, max_bytes=max_bytes)

    @classmethod
    def from_file(
        cls,
        fileobj: Any,
        filename: str | None = None,
        content_type: str | None = None,
        *,
        max_bytes: int = MAX_MEDIA_BYTES,
    ) -> MediaFile:
        """Read a *binary* file object (``open(…, "rb")``, `io.BytesIO`, an upload stream) from
        its current position to the end.

        The name is *filename*, else the last part of the object's ``.name`` (as real files
        have). At most ``max_bytes + 1`` bytes are read, so an endless stream is refused, not
        swallowed.

        Raises:
            InvalidRequestError: a text-mode file object, no ``read``, no name to be found,
                nothing read, or more than *max_bytes*.
        """
        label = filename if isinstance(filename, str) else _name_of(fileobj) or "the file"
        if isinstance(fileobj, io.TextIOBase):
            raise InvalidRequestError(
                _FIELD, f"{label}: a text-mode file object; open it in binary mode ('rb')"
            )
        read: Callable[[int], object] | None = getattr(fileobj, "read", None)
        if not callable(read):
            raise InvalidRequestError(
                _FIELD,
                f"from_file takes a binary file object, not {type(fileobj).__name__} "
                "(for a path use MediaFile.from_path, for bytes MediaFile.from_bytes)",
            )
        if filename is None:
            filename = _name_of(fileobj)
            if filename is None:
                raise InvalidRequestError(
                    _FIELD, "the file object has no name; give filename='photo.jpg'"
                )
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise InvalidRequestError("max_bytes", f"must be a positive int, got {max_bytes!r}")
        data = read(max_bytes + 1)
        if isinstance(data, str):
            raise InvalidRequestError(
                _FIELD, f"{label}: read() gave text; open the file in binary mode ('rb')"
            )
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidRequestError(
                _FIELD, f"{label}: read() gave {type(data).__name__}, not bytes"
            )
        return cls.from_bytes(data, filename, content_type, max_bytes=max_bytes)


def _name_of(fileobj: object) -> str | None:
    """The last part of a file object's ``.name``, when it has a usable one (a real file has
    its path; `io.BytesIO` has none; a file opened from a descriptor has an int)."""
    name = getattr(fileobj, "name", None)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not isinstance(name, str) or not name.strip() or name.startswith("<"):
        return None  # "<stdin>" and friends are not file names
    # Either separator: a name may come from another platform's upload.
    return PurePath(name.replace("\\", "/")).name or None
