"""Errors → one line on stderr and an exit code (the policy in `civic311.cli`'s docstring)."""

from __future__ import annotations

from civic311.cli._output import Output
from civic311.cli._state import State, describe_channels

__all__ = [
    "CITY_ERROR",
    "OK",
    "UNREACHABLE",
    "USAGE",
    "exit_code_for",
    "mask_exception",
    "report",
]

OK = 0
#: The city answered with an error (or an answer that cannot be used).
CITY_ERROR = 1
#: Usage or input error, caught before anything was sent.
USAGE = 2
#: No endpoint could be reached.
UNREACHABLE = 3


def exit_code_for(error: BaseException) -> int:
    """The exit code for an error that ended a command."""
    from civic311.cities import RetiredCityError, UnknownCityError
    from civic311.errors import (
        AllEndpointsFailedError,
        Civic311Error,
        InvalidRequestError,
        TransportError,
    )
    from civic311.ledger import LedgerFileError, LedgerSchemaError

    if isinstance(error, AllEndpointsFailedError | TransportError):
        return UNREACHABLE
    if isinstance(
        error,
        InvalidRequestError
        | UnknownCityError
        | RetiredCityError
        | LedgerSchemaError
        | LedgerFileError,
    ):
        return USAGE  # ValidationFailedError and DuplicateKeyError are InvalidRequestErrors
    if isinstance(error, OSError):
        return USAGE  # a file that cannot be read or written
    if isinstance(error, Civic311Error):
        return CITY_ERROR  # APIError, DecodeError, SubmissionUncertainError, WaitTimeoutError…
    return CITY_ERROR


def message_for(error: BaseException) -> str:
    """One line: the error's type and message."""
    from civic311.errors import AllEndpointsFailedError

    if isinstance(error, AllEndpointsFailedError):
        text = f"{error.operation}: every endpoint failed"
        if error.attempts:
            last = error.attempts[-1]
            text += f" ({len(error.attempts)} attempts; last: {last.endpoint}: {last.outcome})"
    elif isinstance(error, OSError) and error.strerror:
        where = f" {error.filename!s}" if error.filename is not None else ""
        text = f"{error.strerror}:{where}" if where else error.strerror
    else:
        text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text or 'no details'}"


def report(error: BaseException, state: State | None, out: Output) -> int:
    """Print *error* as one line on stderr (and, when the city could not be reached, where
    else a resident can report); return the exit code."""
    code = exit_code_for(error)
    known = error.__class__.__module__.startswith("civic311") or isinstance(error, OSError)
    if known:
        out.error(message_for(error))
    else:
        out.error(f"internal error: {message_for(error)} (run with --debug for the traceback)")
    from civic311.errors import ForbiddenError

    if isinstance(error, ForbiddenError) and state is not None and state.api_key is None:
        out.note(
            "No api key was given: put it in a file for --api-key-file, or in $CIVIC311_API_KEY."
        )
    if code == UNREACHABLE:
        channels = (
            state.other_channels(error)
            if state is not None
            else list(getattr(error, "other_channels", []))
        )
        for line in describe_channels(channels):
            out.note(line)
    return code


def mask_exception(error: BaseException, out: Output) -> BaseException:
    """*error*, and every exception in its cause and context chain, with the secrets masked in
    its arguments and in the text and bytes attributes an error carries (`body`, `url`,
    `errors`…), in place: ``--debug`` lets the exception through to a traceback printed
    outside the masked streams (issue 12 point 3)."""
    from civic311.models import ErrorDetail

    masker = out.stderr.masker
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 32:
        seen.add(id(current))
        current.args = tuple(
            masker.text(arg) if isinstance(arg, str) else arg for arg in current.args
        )
        for name, value in list(vars(current).items()):
            if isinstance(value, str):
                setattr(current, name, masker.text(value))
            elif isinstance(value, bytes):
                setattr(current, name, masker.bytes(value))
            elif isinstance(value, list) and value and isinstance(value[0], ErrorDetail):
                setattr(
                    current,
                    name,
                    [
                        ErrorDetail(
                            code=masker.text(d.code) if d.code else d.code,
                            description=masker.text(d.description),
                        )
                        for d in value
                    ],
                )
        current = current.__cause__ or current.__context__
    return error
