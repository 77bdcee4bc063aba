"""The one error tree of civic311.

Everything civic311 raises on purpose derives from `Civic311Error`, so one ``except`` catches
it all, and each branch says what went wrong in terms a caller can act on::

    Civic311Error
    ├── InvalidRequestError          bad input, caught locally before any network call
    │   ├── ValidationFailedError    a request that breaks its service definition (every `Problem`)
    │   ├── EmergencySuspectedError  a description that reads like an emergency (triage "refuse")
    │   └── DuplicateKeyError        a ledger key already recorded
    ├── APIError                     the city answered with an error status
    │   ├── BadRequestError          400 (and 422, which Klarschiff uses for validation)
    │   ├── ForbiddenError           401, 403: missing or invalid api_key
    │   ├── NotFoundError            404: unknown service_code, request id, token, jurisdiction
    │   ├── RateLimitedError         429: slow down (see `retry_after`)
    │   └── ServerError              5xx
    ├── TransportError               no usable HTTP answer: refused, timed out, dropped
    ├── DecodeError                  a body that is not the promised format or shape
    │   └── ResponseTooLargeError    a body over the size cap; reading stopped there
    ├── AllEndpointsFailedError      several endpoints failed, or all are known down (.errors)
    ├── SubmissionUncertainError     a POST may or may not have created a request (never guessed)
    ├── UnknownCityError             no such city in the registry (civic311.cities; suggests names)
    ├── RetiredCityError             the registry says the city's API is gone (allow_retired=True)
    ├── WaitTimeoutError             wait_for_id gave up: the token never turned into an id
    ├── UntrackableReceiptError      wait_for_id on a receipt with neither id nor token (blackbox)
    ├── LedgerSchemaError            a ledger file written by a newer civic311
    └── LedgerFileError              a ledger file that is corrupt, read-only or not a ledger

And the warnings, so ``warnings.filterwarnings("error", category=Civic311Warning)`` catches
every one::

    Civic311Warning                  the answer is probably incomplete or odd; nothing failed
    ├── HarvestWarning               a harvest window may be incomplete (capped, cannot page)
    ├── CityStatusWarning            a registry entry is questioned, or retired and allowed
    └── EmergencyWarning             a description reads like an emergency; it was still sent

Every class lives in this module (a test keeps it so); the modules that raise them re-export
the ones their users catch (``civic311.cities.UnknownCityError``).

Messages say what was asked, of which endpoint, and what came back. No message, repr or log
line carries the api_key: URLs are redacted before they reach an error (`redact_url`).

Which error a failed call raises (docs/errors.md, issue 11.9): with ONE endpoint, the kind of
the last failure — a maintenance page or truncated body stays a `DecodeError`, a 5xx a
`ServerError`, a refusal a `TransportError` — with every attempt on ``.attempts``. With several
endpoints, or when no attempt was made because every endpoint is known to be down,
`AllEndpointsFailedError`, keeping each endpoint's last error (``.errors``; ``__cause__`` is
the last one seen).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Generic, Literal, TypeVar

import attrs

from civic311._regex import on_first_use

__all__ = [
    "APIError",
    "AllEndpointsFailedError",
    "Attempt",
    "BadRequestError",
    "CityStatusWarning",
    "Civic311Error",
    "Civic311Warning",
    "DecodeError",
    "DuplicateKeyError",
    "EmergencySuspectedError",
    "EmergencyWarning",
    "ForbiddenError",
    "HarvestWarning",
    "InvalidRequestError",
    "LedgerFileError",
    "LedgerSchemaError",
    "NotFoundError",
    "Problem",
    "RateLimitedError",
    "ResponseTooLargeError",
    "RetiredCityError",
    "ServerError",
    "SubmissionUncertainError",
    "TransportError",
    "UnknownCityError",
    "UntrackableReceiptError",
    "ValidationFailedError",
    "WaitTimeoutError",
    "error_for_status",
]


# --- what the errors carry ---------------------------------------------------------------------
#
# The errors sit on the ground floor, so they hold nothing defined above them (no import cycles:
# docs/architecture.md). The two small records they carry, `ErrorDetail` and `Signal`, live
# here and are re-exported where users meet them (`civic311.models`, `civic311.triage`). The
# two that hold an object from a higher floor (the request being submitted, the city refused)
# are generic in it: each raise site fills it with the precise type (`NewRequest`, `City`).

#: The request a `SubmissionUncertainError` carries (a `civic311.NewRequest`).
RequestT = TypeVar("RequestT")
#: The registry entry a `RetiredCityError` carries (a `civic311.cities.City`).
CityT = TypeVar("CityT")


@attrs.frozen
class ErrorDetail:
    """One entry of a GeoReport error body: `code` (often, not always, the HTTP status —
    spec §3.8) and a `description` meant for people."""

    code: str | None
    description: str


#: What an emergency `Signal` sounds like (civic311.triage's phrase list is grouped by these).
EmergencyCategory = Literal[
    "fire",
    "gas_leak",
    "carbon_monoxide",
    "injury",
    "medical",
    "overdose",
    "power_line",
    "crash",
    "drowning",
    "weapon",
    "violence",
    "explosion",
    "trapped",
    "flooding",
    "emergency",
]


@attrs.frozen
class Signal:
    """Wording that reads like an emergency (found by `civic311.triage.emergency_signals`).

    Attributes:
        category: What it sounds like (`EmergencyCategory`).
        text: The words matched, as written.
        span: Where they are: ``text[start:end]`` of the description.
    """

    category: EmergencyCategory
    text: str
    span: tuple[int, int]


#: How much of a raw body an error message quotes (the whole body stays on `.body`).
_SNIPPET = 200


def snippet(body: bytes, limit: int = _SNIPPET) -> str:
    """A short, printable excerpt of *body* for error messages."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_title = on_first_use(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_tag = on_first_use(rb"<[^>]*>")
_invisible = on_first_use(rb"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_html_head = on_first_use(
    rb"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>/])",
    re.IGNORECASE | re.DOTALL,
)


def page_summary(body: bytes) -> str:
    """What an error message quotes of *body*: an HTML page by its ``<title>`` (issue 11 point
    13: 300 characters of markup say nothing), anything else as a `snippet`."""
    head = body[:4096].lstrip(b"\xef\xbb\xbf")
    if not _html_head().match(head):
        return snippet(body)
    import html  # only for HTML error pages: html.entities costs `import civic311` ~1 ms

    size = f"{len(body):,} bytes"
    found = _title().search(body[:65536])
    if found is not None:
        title = snippet(html.unescape(found.group(1).decode("utf-8", "replace")).encode(), 120)
        if title:
            return f"an HTML page titled {title!r} ({size})"
    # No title: its first words, without the markup.
    text = _tag().sub(b" ", _invisible().sub(b" ", body[:8192]))
    words = snippet(html.unescape(text.decode("utf-8", "replace")).encode(), 120)
    return f"an HTML page saying {words!r} ({size})" if words else f"an HTML page ({size})"


class Civic311Error(Exception):
    """Base of every error civic311 raises on purpose.

    Every civic311 error pickles (errors cross process pools and task queues), whatever its
    constructor takes: the message and the attributes travel, not the constructor's arguments.

    Attributes:
        attempts: Every attempt of the call that raised it, when the client retried (each
            `Attempt`: endpoint, number, outcome, error, wait); empty for a local error.
    """

    attempts: Sequence[Attempt] = ()

    def __reduce__(self) -> tuple[object, ...]:
        # The state travels third, so pickle records the error before its attributes: the last
        # of its ``attempts`` holds the error itself, and that cycle must resolve.
        return (_rebuild, (type(self), self.args), dict(self.__dict__))


def _rebuild(cls: type[Civic311Error], args: tuple[object, ...]) -> Civic311Error:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


class InvalidRequestError(Civic311Error, ValueError):
    """An argument or a `NewRequest` is invalid; raised before anything is sent.

    Attributes:
        field: The name of the offending field or argument.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class APIError(Civic311Error):
    """The city answered with an HTTP error status.

    Attributes:
        status_code: The HTTP status.
        errors: The parsed GeoReport error list (`code`, `description`), possibly empty when
            the body was not a recognisable error shape (an HTML page, plain text).
        body: The raw response body, for logging and debugging.
        method: The HTTP method asked.
        url: The URL asked, with any api_key removed.
        retry_after: Seconds the server asked us to wait (Retry-After), when it said so.
        http_status: The status the server really sent. It differs from `status_code` only for
            an error document served with a 2xx (issue 12 points 1-2): `status_code` is then
            the refusal its codes imply (400, 403…), and the error's class follows it.
    """

    def __init__(
        self,
        *,
        status_code: int,
        errors: Sequence[ErrorDetail] = (),
        body: bytes = b"",
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
        http_status: int | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = list(errors)
        self.body = body
        self.method = method
        self.url = url
        self.retry_after = retry_after
        self.http_status = status_code if http_status is None else http_status
        self.hint = ""
        super().__init__(self._message())

    def add_hint(self, hint: str) -> None:
        """Append what the caller may have got wrong to the message (a wrong base URL…)."""
        self.hint = hint
        self.args = (self._message(),)

    def _message(self) -> str:
        asked = f"{self.method} {self.url} " if self.url else ""
        status = f"HTTP {self.http_status}"
        if self.http_status != self.status_code:
            status += f" with an error document (read as {self.status_code})"
        if self.errors:
            said = "; ".join(
                f"[{e.code}] {e.description}" if e.code else e.description for e in self.errors
            )
        else:
            said = page_summary(self.body) or "(empty body)"
        hint = f" ({self.hint})" if getattr(self, "hint", "") else ""
        return f"{asked}→ {status}: {said}{hint}"


class BadRequestError(APIError):
    """400 (or 422): the city refused the request as invalid."""


class ForbiddenError(APIError):
    """401 or 403: missing or invalid api_key (spec §5.1)."""


class NotFoundError(APIError):
    """404: the service_code, request, token or jurisdiction_id does not exist there."""


class RateLimitedError(APIError):
    """429: the city asks us to slow down; `retry_after` says for how long, when given."""


class ServerError(APIError):
    """5xx: the city failed; usually worth retrying or failing over."""


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: ForbiddenError,
    403: ForbiddenError,
    404: NotFoundError,
    422: BadRequestError,  # Klarschiff answers validation errors with 422 (reference §5.2)
    429: RateLimitedError,
}


def error_for_status(status_code: int) -> type[APIError]:
    """The `APIError` subclass for an HTTP status."""
    if status_code >= 500:
        return ServerError
    return _STATUS_ERRORS.get(status_code, APIError)


class TransportError(Civic311Error):
    """No usable HTTP answer: connection refused, timed out, or dropped mid-way.

    Attributes:
        method: The HTTP method asked.
        url: The URL asked, with any api_key removed.
        sent: Whether the request may have reached a server. False only when it provably
            did not (refused, unresolvable, connect timeout): that decides whether a POST may
            be sent again (DESIGN promise 3).
        cause_name: The name of the underlying httpx exception.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        sent: bool = True,
        cause_name: str = "",
    ) -> None:
        self.method = method
        self.url = url
        self.sent = sent
        self.cause_name = cause_name
        self.detail = message
        super().__init__(f"{method} {url} → {message}" if url else message)


class DecodeError(Civic311Error):
    """A response body that is not the promised format or shape.

    An HTML login or maintenance page served with 200, truncated JSON, XML where JSON was
    asked and no sense can be made of it, or a document of the wrong shape.

    Attributes:
        body: The raw body (possibly cut at the size cap).
        url: The URL asked, with any api_key removed.
        status_code: The HTTP status of the response, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        body: bytes = b"",
        url: str = "",
        status_code: int | None = None,
    ) -> None:
        self.body = body
        self.url = url
        self.status_code = status_code
        super().__init__(message)


class ResponseTooLargeError(DecodeError):
    """The body passed the client's `max_response_bytes`; civic311 stopped reading there."""


@attrs.frozen
class Attempt:
    """One try of one call on one endpoint, as listed by `AllEndpointsFailedError`.

    Attributes:
        endpoint: The endpoint's base URL (redacted).
        number: 1-based attempt number across the whole call.
        outcome: A short description of what happened ("HTTP 503", "connection refused", …).
        error: The civic311 error it raised, if any.
        wait: Seconds waited after this attempt before the next one.
    """

    endpoint: str
    number: int
    outcome: str
    error: Civic311Error | None = attrs.field(default=None, eq=False)
    wait: float = 0.0


class AllEndpointsFailedError(Civic311Error):
    """Several endpoints failed, or every endpoint is known to be down; nothing answered.

    With one endpoint, a call that failed after its retries raises the last failure's own kind
    instead (`TransportError`, `ServerError`, `DecodeError`…, each with ``.attempts``). This
    error is for a call that tried several endpoints, or that made no attempt at all because
    every endpoint's circuit is open (``next_probe_at`` says when one is probed again).

    Attributes:
        attempts: Every attempt made, in order (empty when none was: every endpoint down).
        errors: Each endpoint's last error, by endpoint URL in configured order; the
            exception's ``__cause__`` is the last error seen.
        operation: What was asked ("list_services", "submit", …).
        other_channels: Other ways a resident can reach the city (web form, phone), when the
            client knows them, so an app can point somewhere instead of a dead end.
        next_probe_at: When every endpoint is known down: the wall time (UTC) at which the
            soonest one will be probed again. None otherwise.
    """

    def __init__(
        self,
        operation: str,
        attempts: Sequence[Attempt],
        *,
        other_channels: Sequence[str] = (),
        reason: str = "",
        errors: Mapping[str, Civic311Error] | None = None,
        next_probe_at: datetime | None = None,
    ) -> None:
        self.operation = operation
        self.attempts = list(attempts)
        self.other_channels = list(other_channels)
        self.next_probe_at = next_probe_at
        if errors is None:
            errors = {a.endpoint: a.error for a in self.attempts if a.error is not None}
        self.errors: dict[str, Civic311Error] = dict(errors)
        lines = [f"{operation}: every endpoint failed" + (f" ({reason})" if reason else "")]
        lines += [f"  #{a.number} {a.endpoint}: {a.outcome}" for a in self.attempts]
        if not self.attempts:
            lines += [f"  {url}: last error: {_first_line(e)}" for url, e in self.errors.items()]
        if self.other_channels:
            lines.append("  other ways to reach the city: " + "; ".join(self.other_channels))
        super().__init__("\n".join(lines))

    @property
    def last_error(self) -> Civic311Error | None:
        """The error of the last attempt that raised one."""
        for attempt in reversed(self.attempts):
            if attempt.error is not None:
                return attempt.error
        return None


def _first_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 300 else text[:299] + "…"


class SubmissionUncertainError(Civic311Error, Generic[RequestT]):
    """A POST may have created a service request, and civic311 could not find out.

    civic311 never re-sends such a request on its own (GeoReport v2 has no idempotency key, so
    that could file it twice). The request travels with the error so nothing is lost: keep it,
    check the city later, or re-submit knowingly.

    Attributes:
        request: The `NewRequest` that was being submitted.
        attempts: What was tried.
    """

    def __init__(self, message: str, request: RequestT, attempts: Sequence[Attempt] = ()) -> None:
        self.request = request
        self.attempts = list(attempts)
        super().__init__(message)


class WaitTimeoutError(Civic311Error, TimeoutError):
    """`wait_for_id` gave up before the city turned the token into a service_request_id.

    Attributes:
        token: The token that is still pending; it stays a valid handle on the request.
        polls: How many times the token was looked up.
    """

    def __init__(self, token: str, waited: float, polls: int) -> None:
        self.token = token
        self.polls = polls
        super().__init__(
            f"token {token!r} still has no service_request_id after {waited:.1f}s "
            f"and {polls} look-ups; the token stays valid, try again later"
        )


class UntrackableReceiptError(Civic311Error):
    """`wait_for_id` on a receipt with neither an id nor a token.

    That is what a ``blackbox`` service answers (spec §3.1): the city took the report and
    will never give it an id, so there is nothing to wait for.
    """


# --- warnings --------------------------------------------------------------------------------


class Civic311Warning(UserWarning):
    """Something is probably wrong with the answer, though nothing failed (a capped result)."""


# --- the city registry (civic311.cities) ---------------------------------------------------


class UnknownCityError(Civic311Error, LookupError):
    """No registered city has that key, name or alias.

    Attributes:
        query: What was asked for.
        suggestions: Keys of cities whose key, name or alias is close to it.

    *advice* replaces the closing hint for Python callers (the command line points at
    ``civic311 cities`` instead).
    """

    def __init__(
        self, query: str, suggestions: Sequence[str] = (), *, advice: str | None = None
    ) -> None:
        self.query = query
        self.suggestions = list(suggestions)
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        if advice is None:
            advice = (
                "civic311.cities.search() finds by part of a name; civic311.cities.register() "
                "adds your own"
            )
        super().__init__(f"no city {query!r} in the registry{hint} ({advice})")


class RetiredCityError(Civic311Error, Generic[CityT]):
    """The registry marks this city's entry retired: its endpoints are believed gone.

    Attributes:
        city: The `City` refused.
    """

    def __init__(self, city: CityT, *, key: str, name: str, reason: str | None) -> None:
        self.city = city
        reason = f": {reason.rstrip('.')}" if reason else ""
        super().__init__(
            f"{name} ({key}) is marked retired in the registry{reason}. "
            "Pass allow_retired=True to try it anyway."
        )


class CityStatusWarning(Civic311Warning):
    """A city is used whose registry entry is not known to be current ("questioned"), or is
    "retired" and was allowed anyway. The message says why."""


# --- harvesting ----------------------------------------------------------------------------


class HarvestWarning(Civic311Warning):
    """A harvest window may be incomplete: the server capped it and cannot page."""


# --- the ledger ----------------------------------------------------------------------------


class LedgerSchemaError(Civic311Error):
    """The ledger file was written by a newer civic311 (its schema is ahead of this code's).

    Attributes:
        path: The file.
        found: The schema version in the file.
        supported: The newest version this civic311 knows.
    """

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = path
        self.found = found
        self.supported = supported
        super().__init__(
            f"ledger {path!r} has schema version {found}, but this civic311 knows only up to "
            f"{supported}; upgrade civic311 to open it (the file was left untouched)"
        )


class LedgerFileError(Civic311Error):
    """The ledger (journal) storage cannot be used: a corrupt, read-only or foreign file, a
    directory, an unreachable database. Never a raw ``sqlite3`` error.

    Attributes:
        path: The file (or the database URL without its password).
        reason: What is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"ledger {path!r} cannot be used: {reason}")


class DuplicateKeyError(InvalidRequestError):
    """A submission with this ``key`` (or this outbox ``local_id``) is already in the ledger
    (both are unique).

    A bulk runner that resumes after a crash meets this for rows it recorded before: look at
    `existing` (or call `Ledger.find_by_key` first) instead of recording the row again.

    Attributes:
        key: The duplicate value: the key, or the local_id.
        existing: The id of the submission that holds it.
        field: Which one is taken: ``"key"`` or ``"local_id"``.
    """

    def __init__(self, key: str, existing: int, field: str = "key") -> None:
        self.key = key
        self.existing = existing
        super().__init__(field, f"{key!r} is already recorded as submission #{existing}")


# --- validation against a service definition -----------------------------------------------


@attrs.frozen
class Problem:
    """One thing wrong with a request, measured against a service definition.

    Attributes:
        code: The attribute's code (``SURFACE``), or ``service_code`` when the request is for
            another service.
        description: The attribute's description (the question put to the user), if any.
        message: What is wrong (``required``, ``'deep' is not a number``…).
    """

    code: str
    description: str | None
    message: str

    def __str__(self) -> str:
        label = f"{self.code} ({self.description})" if self.description else self.code
        return f"{label}: {self.message}"


class ValidationFailedError(InvalidRequestError):
    """A request breaks its service's definition; raised before anything is sent.

    Its field is ``attributes`` and its message lists every problem, each naming the attribute
    and its question: ``attributes: 2 problems: SURFACE (What is it on?): required; DEPTH (How
    deep, in cm?): 'deep' is not a number``.

    Attributes:
        problems: Every problem found, in the definition's order, unknown codes last.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        listed = "; ".join(str(p) for p in self.problems)
        super().__init__("attributes", f"{count} problem{'s' if count != 1 else ''}: {listed}")


# --- emergency triage (civic311.triage) ----------------------------------------------------


class EmergencyWarning(Civic311Warning):
    """A report's description reads like an emergency (`civic311.triage.check` with the
    ``"warn"`` policy); the report goes on.

    Attributes:
        signals: What was found (empty if the warning was built from a message alone).
    """

    def __init__(self, message: str, signals: Sequence[Signal] = ()) -> None:
        # (message, signals) rather than (signals): the warnings machinery builds a category
        # from a message alone (warnings.warn("…", EmergencyWarning)), so that must work too.
        self.signals = list(signals)
        super().__init__(message)


class EmergencySuspectedError(InvalidRequestError):
    """A report's description reads like an emergency and the `civic311.triage.check` policy is
    ``"refuse"``.

    Ask the person (and point them to 911) before sending it; if it is not an emergency, file
    it (a check with ``"warn"`` or ``"ignore"`` lets it through).

    Attributes:
        signals: What was found.
        categories: The categories, in order of first appearance.
    """

    def __init__(self, signals: Sequence[Signal], message: str) -> None:
        self.signals = list(signals)
        self.categories = list(dict.fromkeys(s.category for s in self.signals))
        super().__init__("description", message)
