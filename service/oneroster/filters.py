"""`filter=`: the binding's grammar, parsed into predicates the database evaluates.

    filter   = predicate *( " AND " predicate ) / predicate *( " OR " predicate )
    predicate = field operator "'" value "'"
    operator = "=" / "!=" / ">" / ">=" / "<" / "<=" / "~"

A quote inside a value is doubled (`familyName='O''Brien'`). Spaces around
an operator and around AND/OR are taken. `~` is "contains", in any letter
case. `AND` and `OR` are not mixed in one filter, and there are no
parentheses: the binding has neither, and either is refused (400
invalid_filter_field), never guessed at.

Values are compared as the records show them: text in code point order
(the binding's Unicode order), dates as YYYY-MM-DD, and `dateLastModified`
as an instant: a value with Z or an offset (or a bare date, midnight UTC) is
turned into the records' own form (UTC, six decimals, Z), whose text order
is time order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from .errors import INVALID_FILTER_FIELD, Refusal, bad_request
from .records import Kind

OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")
# More predicates than any client sends; each is evaluated on every record read.
MAX_PREDICATES = 20
# The form of dateLastModified in every record (oneroster_time(), sql/functions/oneroster.sql).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
_SPACES = re.compile(r"[ \t]*")
_JOIN = re.compile(r"[ \t]+(AND|OR)[ \t]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True)
class Predicate:
    field: str
    op: str
    # As the database compares it (a timestamp in the records' form).
    value: str

    @property
    def moment(self) -> datetime:
        """A dateLastModified predicate's value as an instant."""
        return datetime.strptime(self.value, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filter:
    predicates: tuple[Predicate, ...]
    # True: the predicates are joined by OR; False: by AND (or there is one).
    any_of: bool = False


NONE = Filter(())


def _refuse(detail: str) -> Refusal:
    return bad_request(f"filter: {detail}", INVALID_FILTER_FIELD)


def parse(text: str, fields: dict[str, Kind]) -> Filter:
    """The predicates of `text`, each on one of `fields`; 400 invalid_filter_field otherwise."""
    predicates: list[Predicate] = []
    joins: set[str] = set()
    position = 0
    while True:
        position = _SPACES.match(text, position).end()
        predicate, position = _predicate(text, position, fields)
        predicates.append(predicate)
        if len(predicates) > MAX_PREDICATES:
            raise _refuse(f"at most {MAX_PREDICATES} predicates")
        rest = _SPACES.match(text, position).end()
        if rest == len(text):
            break
        join = _JOIN.match(text, position)
        if join is None:
            raise _refuse(
                f"expected AND, OR or the end at character {position + 1}"
                + (": parentheses are not part of the grammar" if text[rest] in "()" else "")
            )
        joins.add(join[1])
        if len(joins) > 1:
            raise _refuse("AND and OR are not mixed in one filter")
        position = join.end()
    return Filter(tuple(predicates), any_of=joins == {"OR"})


def _predicate(text: str, position: int, fields: dict[str, Kind]) -> tuple[Predicate, int]:
    found = _FIELD.match(text, position)
    if found is None:
        if position < len(text) and text[position] in "()":
            raise _refuse("parentheses are not part of the grammar")
        raise _refuse(f"expected a field name at character {position + 1}")
    field = found[0]
    kind = fields.get(field)
    if kind is None:
        raise _refuse(f"{field} is not a field this collection can be filtered on")
    position = _SPACES.match(text, found.end()).end()
    op = next((o for o in OPERATORS if text.startswith(o, position)), None)
    if op is None:
        raise _refuse(f"expected an operator (= != > >= < <= ~) after {field}")
    position = _SPACES.match(text, position + len(op)).end()
    if not text.startswith("'", position):
        raise _refuse(f"the value of {field} must be in single quotes")
    value, position = _quoted(text, position + 1)
    return Predicate(field, op, _value(field, kind, op, value)), position


def _quoted(text: str, position: int) -> tuple[str, int]:
    """The value from `position` to its closing quote (a doubled quote is one), and what follows."""
    parts = []
    while True:
        end = text.find("'", position)
        if end < 0:
            raise _refuse("a value's closing quote is missing")
        parts.append(text[position:end])
        if text.startswith("''", end):
            parts.append("'")
            position = end + 2
            continue
        return "".join(parts), end + 1


def _value(field: str, kind: Kind, op: str, value: str) -> str:
    if op == "~" or kind is Kind.TEXT:
        return value
    if kind is Kind.DATE:
        if _DATE.fullmatch(value):
            try:
                date.fromisoformat(value)
            except ValueError:
                pass
            else:
                return value
        raise _refuse(f"{field} takes a date, YYYY-MM-DD")
    try:
        if _DATE.fullmatch(value):
            moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
        elif _TIMESTAMP.fullmatch(value):
            moment = datetime.fromisoformat(value.replace("z", "Z"))
        else:
            raise ValueError(value)
    except ValueError:
        raise _refuse(
            f"{field} takes a timestamp with Z or an offset (2026-01-31T08:00:00Z) or a date"
        ) from None
    return moment.astimezone(UTC).strftime(TIME_FORMAT)
