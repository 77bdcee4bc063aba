"""The ``civic311`` click group: global options, error handling, and the sub-commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

import civic311.cli._commands as _commands
from civic311._version import __version__
from civic311.cli._bulk import bulk
from civic311.cli._errors import USAGE, mask_exception, report
from civic311.cli._ledger_cmd import ledger
from civic311.cli._output import Output
from civic311.cli._state import State, read_api_key, warnings_to
from civic311.cli._submit import submit
from civic311.profiles import PROFILES

__all__ = ["cli"]

EPILOG = """\b
Exit codes:
  0  done
  1  the city answered with an error: HTTP 4xx/5xx, an answer that cannot be read, a
     submission whose outcome is uncertain, a token that did not become an id in time
  2  usage or input error, caught before anything was sent: bad options, naive
     datetimes, a request the service definition rejects, an unreadable file, an unknown
     city, an emergency-sounding description without --yes
  3  no endpoint could be reached (refused, timed out, all down); the city's other
     channels (web form, phone) are printed so the report can still be made
  130 interrupted (Ctrl-C)

\b
The api key comes from --api-key-file or $CIVIC311_API_KEY and is never printed.
The ledger (every submission and status seen) is --ledger, else $CIVIC311_LEDGER,
else $XDG_DATA_HOME/civic311/ledger.sqlite (~/.local/share/civic311/ledger.sqlite).
"""


class Civic311Group(click.Group):
    """A group that builds the run's `State` and turns errors into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the order they were added: the order of a session

    def invoke(self, ctx: click.Context) -> Any:
        params = ctx.params
        out = Output(json_mode=bool(params.get("json_mode")))
        debug = bool(params.get("debug"))
        state: State | None = None
        try:
            api_key = read_api_key(params.get("api_key_file"), out)
            out = Output(json_mode=out.json_mode, secrets=[api_key] if api_key else [])
            with warnings_to(out):
                state = State(
                    out=out,
                    city=params.get("city"),
                    endpoints=tuple(params.get("endpoints") or ()),
                    jurisdiction=params.get("jurisdiction"),
                    format=params.get("format_"),
                    profile=params.get("profile"),
                    ledger_option=params.get("ledger"),
                    api_key=api_key,
                    timeout=params.get("timeout"),
                    debug=debug,
                )
                ctx.obj = state
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # click reports these itself (usage errors exit 2)
        except BrokenPipeError:
            raise  # `civic311 … | head`: click quietens stdout and exits 1
        except KeyboardInterrupt:
            out.error("interrupted")
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            if debug:
                mask_exception(exc, out)  # the traceback is printed outside the masked streams
                raise
            raise click.exceptions.Exit(report(exc, state, out)) from None
        finally:
            if state is not None:
                state.close()


@click.group(
    cls=Civic311Group,
    invoke_without_command=True,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--city",
    metavar="NAME",
    help="A city of the bundled registry, by key, name or alias (see `civic311 cities`).",
)
@click.option(
    "--endpoint",
    "endpoints",
    metavar="URL",
    multiple=True,
    help="A GeoReport v2 base URL; repeat for fallbacks, primary first. With --city, "
    "replaces the registry's endpoints.",
)
@click.option("--jurisdiction", metavar="ID", help="The jurisdiction_id to send.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["json", "xml"], case_sensitive=False),
    help="The format asked of the city (default: the city's profile, else json).",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES), case_sensitive=False),
    metavar="NAME",
    help="The server's quirk profile: spec, chicago, fixmystreet… (--city picks it).",
)
@click.option(
    "--json",
    "json_mode",
    is_flag=True,
    help="Machine-readable JSON on stdout (JSON Lines for harvest and watch).",
)
@click.option(
    "--ledger",
    # A string, not click.Path: a postgresql:// URL must reach State intact (State decides).
    type=str,
    metavar="PATH|URL",
    help=(
        "The ledger: a SQLite file, or a postgresql://… URL shared by several workers "
        "[default: $CIVIC311_LEDGER, else the user's data directory]."
    ),
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="A file holding the api key (or set $CIVIC311_API_KEY). The key is never printed.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Seconds for each HTTP exchange [default: 10].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, "--version", prog_name="civic311")
@click.pass_context
def cli(ctx: click.Context, /, **_: Any) -> None:
    """An Open311 GeoReport v2 client that survives outages.

    List a city's services, file a report, follow it, harvest requests, file many at once,
    and keep a ledger of everything sent. Global options go before the command:

    \b
      civic311 --city bloomington services
      civic311 --endpoint https://city.example/open311/v2 submit --service-code 001 \\
          --lat 39.16 --long -86.52 --description "Pothole in the right lane"
      civic311 --json --city chicago requests --status open
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(USAGE)


for command in (
    _commands.cities,
    _commands.services,
    _commands.definition,
    submit,
    _commands.token,
    _commands.request,
    _commands.requests,
    _commands.harvest,
    _commands.discover,
    _commands.health,
    bulk,
    _commands.watch,
    ledger,
    _commands.stats,
    _commands.demo,
    _commands.fake_city,
):
    cli.add_command(command)
