"""Field checks: each takes a JSON value and returns it cleaned, or raises Bad.

Rules follow the HTTP contract: unknown fields are rejected, integers are JSON
integers only (not true, "7", 7.0 or null), strings are trimmed and must not
carry control characters (PostgreSQL cannot store NUL, and the others are
never meant in a name). `fields()` checks a whole object and answers one 422
naming every bad field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..errors import FieldError, Problem, invalid
from .decoding import OUT_OF_RANGE

MAX_ID = 2**63 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NOT_SPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Bad(Exception):
    """A value a check refuses; its message says why (the 422 names the field).

    A check of a list or an object may refuse several of its parts at once:
    `parts` then holds (the part's place, as "[0].starts", and why), and the
    422 names each as the field followed by its place ("meetings[0].starts").
    """

    def __init__(self, message: str, parts: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.parts = parts if parts is not None else [("", message)]


def text(low: int, high: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad("must be a string")
        # Tab, CR and LF may surround a value and are trimmed; other control
        # characters are refused wherever they are (str.strip would drop
        # U+001C..U+001F silently).
        if _CONTROL_NOT_SPACE.search(value):
            raise Bad("must not contain control characters")
        value = value.strip()
        _plain(value)
        if not low <= len(value) <= high:
            raise Bad(f"must be {low} to {high} characters long")
        return value

    return check


def _plain(value: str) -> None:
    if _CONTROL.search(value):
        raise Bad("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Bad("must be valid Unicode text") from None


def email(value: Any) -> str:
    value = text(3, 254)(value)
    local, at, domain = value.partition("@")
    if not at or not local or not domain or "@" in domain:
        raise Bad("must contain exactly one @ with text on both sides")
    if any(ch.isspace() for ch in value):
        raise Bad("must not contain white space")
    return value


def code(value: Any) -> str:
    value = text(1, 32)(value)
    if any(ch.isspace() for ch in value):
        raise Bad("must not contain white space")
    return value


# Characters a sourced_id may not hold besides white space: the controls
# (Cc) and the format characters (Cf: U+200B, U+FEFF, ...), which ICU's
# u_iscntrl() counts as controls, so a database whose locale is ICU's
# refuses them too; line and paragraph separators are white space already.
_INVISIBLE = frozenset({"Cc", "Cf"})


def sourced_id(value: Any) -> str:
    """A OneRoster sourcedId: 1..255 characters, none of them white space or a control character.

    Taken as sent, never trimmed: it is another system's key. At least as
    strict as the database's last guard, sourced_id_valid() (migration
    0018), in any locale.
    """
    if not isinstance(value, str):
        raise Bad("must be a string")
    if not 1 <= len(value) <= 255:
        raise Bad("must be 1 to 255 characters long")
    if any(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in value):
        raise Bad("must not contain white space or control characters")
    _plain(value)
    return value


def integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        # orjson reads integers beyond 64 bits as floats; they are out of range.
        if value is OUT_OF_RANGE or (isinstance(value, float) and abs(value) >= 2**63):
            raise Bad(f"must be between {low} and {high}")
        if type(value) is not int:
            raise Bad("must be an integer")
        if not low <= value <= high:
            raise Bad(f"must be between {low} and {high}")
        return value

    return check


def boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise Bad("must be true or false")
    return value


def one_of(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise Bad(f"must be one of {', '.join(allowed)}")
        return value

    return check


def decimal(low: str, high: str, places: int) -> Callable[[Any], Decimal]:
    """A JSON number low..high with at most `places` decimals (numeric(p, places) in the database).

    Taken as the shortest decimal that reads back as the same float (12.3,
    not 12.300000000000000710...), so what the client wrote is what is checked.
    """
    bottom, top = Decimal(low), Decimal(high)
    step = Decimal(1).scaleb(-places)
    message = f"must be a number from {low} to {high} with at most {places} decimal"
    message += "s" if places > 1 else ""

    def check(value: Any) -> Decimal:
        if value is OUT_OF_RANGE:
            raise Bad(message)
        if type(value) is int:
            number = Decimal(value)
        elif type(value) is float:
            number = Decimal(repr(value))
        else:
            raise Bad("must be a number")
        if not bottom <= number <= top or number != number.quantize(step):
            raise Bad(message)
        return number

    return check


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
MEETING_KEYS = ("days", "starts", "ends")


def meetings(value: Any) -> list[dict[str, Any]]:
    """0..10 weekly meetings, each {"days", "starts", "ends"}, normalized.

    `days`: a non-empty list of mon..sun without repeats, stored in week
    order; `starts` < `ends`: "HH:MM" on a 24-hour clock (an hour of one
    digit is taken and stored zero-padded). Every bad part is named, as
    "[1].days" after the field.
    """
    if not isinstance(value, list) or len(value) > 10:
        raise Bad("must be a list of at most 10 meetings")
    clean: list[dict[str, Any]] = []
    parts: list[tuple[str, str]] = []
    for i, meeting in enumerate(value):
        if not isinstance(meeting, dict):
            parts.append((f"[{i}]", 'must be an object {"days", "starts", "ends"}'))
            continue
        bad = [
            (f"[{i}].{printable(k)}", "is not a known field")
            for k in meeting
            if k not in MEETING_KEYS
        ]
        bad += [(f"[{i}].{k}", "is required") for k in MEETING_KEYS if k not in meeting]
        days = meeting.get("days")
        if "days" in meeting and (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, str) and d in DAYS for d in days)
            or len(set(days)) != len(days)
        ):
            bad.append(
                (f"[{i}].days", f"must be a non-empty list of {', '.join(DAYS)} without repeats")
            )
        times = {}
        for k in ("starts", "ends"):
            raw = meeting.get(k)
            found = _TIME.fullmatch(raw) if isinstance(raw, str) else None
            if found:
                times[k] = f"{int(found[1]):02}:{found[2]}"
            elif k in meeting:
                bad.append((f"[{i}].{k}", "must be a time HH:MM from 00:00 to 23:59"))
        if len(times) == 2 and times["starts"] >= times["ends"]:
            bad.append((f"[{i}].ends", "must be later than starts, on the same day"))
        if bad:
            parts += bad
            continue
        clean.append({"days": [d for d in DAYS if d in days], **times})
    if parts:
        raise Bad("has invalid meetings", parts)
    return clean


def codes(high: int) -> Callable[[Any], list[str]]:
    """A list of 0..`high` course codes, each checked as `code`; each bad one named as "[i]"."""

    def check(value: Any) -> list[str]:
        if not isinstance(value, list) or len(value) > high:
            raise Bad(f"must be a list of at most {high} course codes")
        clean, parts = [], []
        for i, item in enumerate(value):
            try:
                clean.append(code(item))
            except Bad as exc:
                parts.append((f"[{i}]", str(exc)))
        if parts:
            raise Bad("has invalid course codes", parts)
        return clean

    return check


def rules(allowed: tuple[str, ...]) -> Callable[[Any], str | None]:
    """Rules a registrar overrides: a list of distinct names among `allowed`.

    Comma-joined as the database functions take them; None for an empty list.
    """

    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not all(
            isinstance(rule, str) and rule in allowed for rule in value
        ):
            raise Bad(f"must be a list of rules among {', '.join(allowed)}")
        if len(set(value)) != len(value):
            raise Bad("names a rule more than once")
        return ",".join(value) or None

    return check


# RFC 3339's date-time (section 5.6): the offset is required, so no moment is
# read in the server's time zone.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def calendar_date(value: Any) -> date:
    """A date as YYYY-MM-DD (RFC 3339's full-date), years 0001 to 9999."""
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    try:
        if match:
            return date(*map(int, match.groups()))
    except ValueError:
        pass
    raise Bad("must be a date as YYYY-MM-DD")


def timestamp(value: Any) -> datetime:
    message = "must be an RFC 3339 timestamp with a UTC offset, e.g. 2027-01-15T09:00:00Z"
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise Bad(message)
    try:
        # fromisoformat keeps microseconds (any further digits are cut) and
        # refuses what the pattern lets through but the calendar does not
        # (February 30, hour 24, second 60); a moment outside years 1..9999
        # in UTC cannot be stored.
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise Bad(message) from None


def read_only(value: Any) -> Any:
    raise Bad("is read-only: the service keeps it")


def set_on_create(value: Any) -> Any:
    """A field given only when the record is created (sourced_id): a PATCH naming it is 422."""
    raise Bad("cannot be changed: it is given only when the record is created")


def nullable(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrapped(value: Any) -> Any:
        return None if value is None else check(value)

    return wrapped


def fields(
    document: dict[str, Any],
    checks: dict[str, Callable[[Any], Any]],
    *,
    required: tuple[str, ...] = (),
    at_least_one: bool = False,
) -> dict[str, Any]:
    """Check a JSON object against named field checks; collect every error."""
    # Most bodies are valid: one pass over them, and only a body that fails
    # it pays for collecting every error (about half the cost, by callgrind).
    clean: dict[str, Any] = {}
    try:
        for name, value in document.items():
            clean[name] = checks[name](value)
    except (KeyError, Bad):
        pass  # an unknown field or a bad value
    else:
        if _complete(clean, required, at_least_one):
            return clean
    raise _every_error(document, checks, required, at_least_one)


def exactly_one(document: dict[str, Any], first: str, *others: str) -> list[FieldError]:
    """The errors when `document` has none, or more than one, of the fields that name one thing."""
    given = [name for name in (first, *others) if name in document]
    if len(given) == 1:
        return []
    if not given:
        return [FieldError(first, f"is required, or {' or '.join(others)}")]
    message = f"give only one of {', '.join(given[:-1])} and {given[-1]}"
    return [FieldError(name, message) for name in given]


def batch_items(document: dict[str, Any], maximum: int) -> list[dict[str, Any]]:
    """The items of a batch body, `{"items": [1..maximum objects]}`; else the whole body's 422."""
    errors = [
        FieldError(printable(name), "is not a known field") for name in document if name != "items"
    ]
    items = document.get("items")
    if "items" not in document:
        errors.append(FieldError("items", "is required"))
    elif not isinstance(items, list) or not 1 <= len(items) <= maximum:
        errors.append(FieldError("items", f"must be a list of 1 to {maximum} objects"))
    else:
        errors += [
            FieldError(f"items[{i}]", "must be an object")
            for i, item in enumerate(items)
            if not isinstance(item, dict)
        ]
    if errors:
        raise invalid(errors)
    return items


def _complete(clean: dict[str, Any], required: tuple[str, ...], at_least_one: bool) -> bool:
    for name in required:
        if name not in clean:
            return False
    return bool(clean) or not at_least_one


def _every_error(
    document: dict[str, Any],
    checks: dict[str, Callable[[Any], Any]],
    required: tuple[str, ...],
    at_least_one: bool,
) -> Problem:
    """The 422 naming every field that is missing, unknown or invalid."""
    errors = [FieldError(name, "is required") for name in required if name not in document]
    errors += [
        FieldError(printable(name), "is not a known field")
        for name in document
        if name not in checks
    ]
    for name, check in checks.items():
        if name in document:
            try:
                check(document[name])
            except Bad as exc:
                errors += [FieldError(name + place, message) for place, message in exc.parts]
    if at_least_one and not document:
        writable = ", ".join(
            name for name, check in checks.items() if check not in (read_only, set_on_create)
        )
        errors.append(FieldError("body", f"give at least one of {writable}"))
    return invalid(errors)


def printable(name: str) -> str:
    """A name the client sent, fit to echo in a problem: valid text, no control characters, short."""
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = _CONTROL.sub("?", name)
    return name if len(name) <= 64 else name[:61] + "..."
