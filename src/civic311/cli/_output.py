"""What the command writes, and where: results on stdout, diagnostics on stderr.

Every byte goes through a `Scrubbed` stream that replaces the api_key with ``***``, so even a
city that echoes the key in an error body cannot make the command print it. Results are JSON
with ``--json`` (`jsonable` turns any civic311 object into plain data) and rich renderables
otherwise; rich is imported only when something is rendered, so ``civic311 --help`` stays fast.
"""

from __future__ import annotations

import enum
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

import attrs

from civic311 import _secrets
from civic311._secrets import Masker

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

__all__ = ["Output", "Scrubbed", "jsonable", "when"]

#: What a secret is replaced with in everything the command writes.
MASK = _secrets.MASK


class Scrubbed(io.TextIOBase):
    """A text stream that writes through to another with every secret masked."""

    def __init__(self, stream: IO[str], secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._stream = stream
        # The one masking rule (civic311._secrets): every spelling the output can give a key
        # (JSON-escaped in --json, URL-encoded in a URL), short keys only where they stand as
        # values, so "test" as a key does not turn "a test service" into "a *** service".
        self._masker = Masker(list(secrets))

    @property
    def masker(self) -> Masker:
        """The masking this stream applies (the CLI masks exceptions with it too)."""
        return self._masker

    def scrub(self, text: str) -> str:
        """*text* with every secret masked."""
        return self._masker.text(text)

    def write(self, text: str) -> int:
        self._stream.write(self.scrub(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        return bool(isatty()) if callable(isatty) else False

    def writable(self) -> bool:
        return True

    def text_io(self) -> TextIO:
        """This stream, as the `TextIO` that APIs such as rich's `Console` expect."""
        return cast(TextIO, self)


def jsonable(value: Any) -> Any:
    """Plain JSON data for *value*: `civic311.to_dict` for models, ISO 8601 for datetimes,
    seconds for durations, attrs classes field by field, enums by value."""
    from civic311._wire.converter import MODELS, to_dict

    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, str):
        return str(value)  # Status, ServiceType… are str subclasses: plain strings
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    if type(value) in MODELS:
        return to_dict(value)
    to_plain = getattr(value, "to_dict", None)
    if callable(to_plain) and attrs.has(type(value)):
        return jsonable(to_plain())  # City
    if attrs.has(type(value)):
        return {
            field.name: jsonable(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if not field.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return str(value)


def when(value: datetime | None) -> str:
    """A datetime for people: ``2026-01-02 08:00 UTC`` (in its own zone), ``-`` for None."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M %Z").strip() or value.isoformat()


class Output:
    """The command's two streams, with the api_key masked on both.

    Args:
        json_mode: Results as JSON (``--json``) instead of rich text.
        secrets: Text that must never be written (the api_key).
    """

    def __init__(self, *, json_mode: bool, secrets: Sequence[str] = ()) -> None:
        self.json_mode = json_mode
        self.stdout = Scrubbed(sys.stdout, secrets)
        self.stderr = Scrubbed(sys.stderr, secrets)
        self._console: Console | None = None
        self._err_console: Console | None = None

    # --- machine-readable --------------------------------------------------------------------

    def json(self, data: Any) -> None:
        """One JSON document on stdout."""
        self.stdout.write(json.dumps(jsonable(data), ensure_ascii=False, indent=2) + "\n")
        self.stdout.flush()

    def json_line(self, data: Any) -> None:
        """One line of JSON Lines on stdout (streamed results: watch, harvest)."""
        self.stdout.write(json.dumps(jsonable(data), ensure_ascii=False) + "\n")
        self.stdout.flush()

    # --- people ------------------------------------------------------------------------------

    @property
    def console(self) -> Console:
        """A rich console on stdout; markup off, so a city's text is printed as written."""
        if self._console is None:
            self._console = _console(self.stdout)
        return self._console

    @property
    def err_console(self) -> Console:
        """A rich console on stderr (progress bars)."""
        if self._err_console is None:
            self._err_console = _console(self.stderr)
        return self._err_console

    def show(self, *renderables: RenderableType) -> None:
        """Print rich renderables (or plain strings, printed as written) on stdout."""
        self.console.print(*renderables)

    def text(self, line: str = "") -> None:
        """One plain line on stdout."""
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        title: str | None = None,
    ) -> Table:
        """A rich table of plain cells (None shows as ``-``); the caller prints it."""
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", highlight=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
        return table

    # --- diagnostics -------------------------------------------------------------------------

    def note(self, message: str) -> None:
        """A line for the person on stderr (progress notes, where a file was written)."""
        self.stderr.write(message + "\n")
        self.stderr.flush()

    def warn(self, message: str) -> None:
        """A warning on stderr."""
        self.note(f"warning: {message}")

    def error(self, message: str) -> None:
        """An error on stderr."""
        self.note(f"error: {message}")


def _console(stream: Scrubbed) -> Console:
    from rich.console import Console

    terminal = stream.isatty()
    return Console(
        file=stream.text_io(),
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=False,
        # Piped output is not cut at 80 columns: long URLs and descriptions stay greppable.
        width=None if terminal else 200,
        no_color=not terminal,
    )
