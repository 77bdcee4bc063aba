"""The global options, turned into what the sub-commands need: a client, the ledger, output.

One `State` per run lives in ``click.Context.obj``. It builds clients on demand (a command that
needs no city, such as ``cities``, never asks for one), opens the ledger only when a command
uses it, and keeps the api_key out of every repr.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import click

from civic311.cli._output import Output

if TYPE_CHECKING:
    from civic311 import AsyncClient, Client
    from civic311.cities import City
    from civic311.ledger import Ledger

__all__ = [
    "API_KEY_ENV",
    "LEDGER_ENV",
    "AwareDateTime",
    "State",
    "default_ledger_path",
    "read_api_key",
]

#: The environment variable that holds the api_key (when no --api-key-file is given).
API_KEY_ENV = "CIVIC311_API_KEY"

#: The environment variable that names the ledger file (when no --ledger is given).
LEDGER_ENV = "CIVIC311_LEDGER"

NEEDS_CITY = (
    "this command talks to a city: give --city NAME (see `civic311 cities`) or "
    "--endpoint URL before the command, e.g. `civic311 --city bloomington services`"
)


def default_ledger_path(environ: os._Environ[str] | dict[str, str] | None = None) -> Path | str:
    """Where the ledger lives without --ledger: ``$CIVIC311_LEDGER`` (a path or a
    ``postgresql://`` URL), else ``$XDG_DATA_HOME/civic311/ledger.sqlite``, else
    ``~/.local/share/civic311/ledger.sqlite``."""
    env = os.environ if environ is None else environ
    named = env.get(LEDGER_ENV, "").strip()
    if named:
        return ledger_target(named)
    data_home = env.get("XDG_DATA_HOME", "").strip()
    base = Path(data_home) if data_home else Path.home() / ".local" / "share"
    return base / "civic311" / "ledger.sqlite"


def ledger_target(given: str | Path) -> Path | str:
    """A --ledger value: a ``postgresql://`` URL as given, else a file path (``~`` expanded)."""
    # Imported here: commands that never open the ledger do not load the journal's modules.
    from civic311._journal.postgres import is_postgres_url

    if is_postgres_url(given):
        return str(given)
    return Path(given).expanduser()


def read_api_key(path: Path | None, out: Output) -> str | None:
    """The api_key from *path* (first non-blank line, trimmed) or ``$CIVIC311_API_KEY``.

    The key itself never appears in a message: errors name the file only.
    """
    if path is None:
        key = os.environ.get(API_KEY_ENV, "").strip()
        return key or None
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise click.BadParameter(
            f"cannot read {str(path)!r}: {reason}", param_hint="'--api-key-file'"
        ) from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise click.BadParameter(f"{str(path)!r} is empty", param_hint="'--api-key-file'")
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        out.warn(f"the api key file {str(path)!r} can be read by other users; chmod 600 it")
    return lines[0]


if TYPE_CHECKING:
    _DateTimeType = click.ParamType[datetime, Any]
else:
    _DateTimeType = click.ParamType


class AwareDateTime(_DateTimeType):
    """An ISO 8601 datetime that says its zone: ``2026-01-01T00:00:00Z`` or ``…+02:00``.

    A datetime without a zone is refused (exit 2) rather than guessed: "midnight" means a
    different instant in every city, and GeoReport v2 servers disagree about what a zone-less
    time means (reference §10.28). A bare date is refused the same way.
    """

    name = "datetime"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            self.fail(
                f"{text!r} is not an ISO 8601 datetime (e.g. 2026-01-01T00:00:00Z)", param, ctx
            )
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(
                f"{text!r} has no timezone; add Z for UTC (2026-01-01T00:00:00Z) or an offset "
                "(2026-01-01T00:00:00-05:00)",
                param,
                ctx,
            )
        return parsed


@attrs.define(kw_only=True)
class State:
    """The parsed global options of one run."""

    out: Output
    city: str | None = None
    endpoints: tuple[str, ...] = ()
    jurisdiction: str | None = None
    format: Literal["json", "xml"] | None = None
    profile: str | None = None
    ledger_option: Path | str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout: float | None = None
    debug: bool = False
    _ledger: Ledger | None = attrs.field(default=None, init=False, repr=False)
    _city_entry: City | None = attrs.field(default=None, init=False, repr=False)

    @property
    def json(self) -> bool:
        """Whether results are JSON (``--json``)."""
        return self.out.json_mode

    # --- the city ----------------------------------------------------------------------------

    def registry_city(self) -> City | None:
        """The registry entry of --city (None without --city)."""
        if self.city is None:
            return None
        if self._city_entry is None:
            from civic311 import cities
            from civic311.errors import UnknownCityError

            try:
                self._city_entry = cities.get(self.city)
            except UnknownCityError as exc:
                # At a shell the next step is a command, not a Python call (issue 14.8).
                stem = shlex.quote(" ".join(exc.query.split())[:4] or exc.query)
                raise UnknownCityError(
                    exc.query,
                    exc.suggestions,
                    advice=f"`civic311 cities {stem}` lists the cities whose name has {stem}; "
                    "`civic311 cities` lists them all",
                ) from None
        return self._city_entry

    def _client_args(self) -> tuple[list[str], dict[str, Any]]:
        options: dict[str, Any] = {}
        if self.api_key is not None:
            options["api_key"] = self.api_key
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.format is not None:
            options["format"] = self.format
        if self.jurisdiction is not None:
            options["jurisdiction_id"] = self.jurisdiction
        if self.profile is not None:
            options["profile"] = self.profile
        city = self.registry_city()
        if city is not None:
            from civic311 import cities

            cities.check_usable(city)
            endpoints = list(self.endpoints) or city.endpoints("production")
            options.setdefault("jurisdiction_id", city.jurisdiction_id)
            options.setdefault("profile", city.profile)
            options["other_channels"] = city.other_channels()
            return endpoints, options
        if self.endpoints:
            return list(self.endpoints), options
        raise click.UsageError(NEEDS_CITY)

    def client(self) -> Client:
        """A `Client` for --city / --endpoint; a usage error (exit 2) when neither is given."""
        from civic311 import Client

        endpoints, options = self._client_args()
        return Client(endpoints, **options)

    def async_client(self) -> AsyncClient:
        """An `AsyncClient` for --city / --endpoint (bulk commands)."""
        from civic311 import AsyncClient

        endpoints, options = self._client_args()
        return AsyncClient(endpoints, **options)

    def other_channels(self, error: BaseException | None = None) -> list[str]:
        """Other ways to reach the city: the error's, else the registry's."""
        channels = list(getattr(error, "other_channels", None) or [])
        if not channels and self.city is not None:
            try:
                city = self.registry_city()
            except Exception:  # an unknown city: nothing to add
                city = None
            if city is not None:
                channels = city.other_channels()
        return channels

    # --- the ledger --------------------------------------------------------------------------

    @property
    def ledger_target(self) -> Path | str:
        """--ledger, else ``$CIVIC311_LEDGER``, else the user's data directory: a file path,
        or a ``postgresql://`` URL (which may hold a password: never print it, see
        `ledger_path`)."""
        if self.ledger_option is not None:
            return ledger_target(self.ledger_option)
        return default_ledger_path()

    @property
    def ledger_path(self) -> Path | str:
        """Where the ledger is, as shown to the user (a URL without its password)."""
        from civic311._journal.postgres import safe_url

        target = self.ledger_target
        return safe_url(target) if isinstance(target, str) else target

    def ledger(self) -> Ledger:
        """The ledger, opened (and created, with its directory, 0700) on first use."""
        if self._ledger is None:
            from civic311.ledger import Ledger

            path = self.ledger_target
            if isinstance(path, Path) and not path.parent.exists():
                path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            self._ledger = Ledger(path)
        return self._ledger

    def close(self) -> None:
        """Close the ledger, if it was opened."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


def now() -> datetime:
    """The wall time, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


def seconds(value: float) -> str:
    """A duration in seconds for people: ``1.5 s``, ``2 min``, ``3 h``."""
    delta = timedelta(seconds=value)
    if delta < timedelta(minutes=2):
        return f"{value:g} s"
    if delta < timedelta(hours=2):
        return f"{value / 60:g} min"
    return f"{value / 3600:g} h"


@contextmanager
def warnings_to(out: Output) -> Iterator[None]:
    """Show warnings raised while the command runs as one line each on stderr.

    civic311's own warnings (a questioned city, a harvest window the server capped, a
    description that reads like an emergency) are for the person at the terminal; library
    deprecation notices are not.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: object = None,
            line: str | None = None,
        ) -> None:
            out.warn(f"{category.__name__}: {message}")

        warnings.showwarning = show
        yield


def stdin_is_interactive() -> bool:
    """Whether a person can answer a question (stdin and stderr are terminals)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def describe_channels(channels: Sequence[str]) -> list[str]:
    """Lines that tell a resident where else to report."""
    if not channels:
        return [
            "No other way to reach this city is known to civic311: look for its 311 web page "
            "or phone line."
        ]
    return ["Other ways to reach the city:", *(f"  {channel}" for channel in channels)]
