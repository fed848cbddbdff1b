"""service/oneroster/filters.py: the binding's filter grammar, without a server.

What a filter means on real records is tested through the provider
(tests/test_oneroster_provider.py); here, what the parser takes and refuses.
"""

from __future__ import annotations

import pytest

from service.oneroster.errors import INVALID_FILTER_FIELD, Refusal
from service.oneroster.filters import MAX_LENGTH, MAX_PREDICATES, Filter, Predicate, parse
from service.oneroster.records import ENROLLMENT, USER

FIELDS = USER.scalars


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # one predicate of each operator
        *[
            (f"familyName{op}'Lovelace'", Filter((Predicate("familyName", op, "Lovelace"),)))
            for op in ("=", "!=", ">", ">=", "<", "<=", "~")
        ],
        # a doubled quote is one quote; an empty value is a value
        ("familyName='O''Brien'", Filter((Predicate("familyName", "=", "O'Brien"),))),
        ("middleName=''", Filter((Predicate("middleName", "=", ""),))),
        ("givenName=''''", Filter((Predicate("givenName", "=", "'"),))),
        # AND and OR, each alone; spaces around operators and joins are taken
        (
            "status='active' AND givenName~'ann'",
            Filter((Predicate("status", "=", "active"), Predicate("givenName", "~", "ann"))),
        ),
        (
            " email='a@x.org'  OR email = 'b@x.org' ",
            Filter((Predicate("email", "=", "a@x.org"), Predicate("email", "=", "b@x.org")), True),
        ),
        # an operator-like text and AND inside a value are the value's
        ("givenName='>= AND OR'", Filter((Predicate("givenName", "=", ">= AND OR"),))),
        # a GUIDRef's sourcedId
        (
            "primaryOrg.sourcedId='school'",
            Filter((Predicate("primaryOrg.sourcedId", "=", "school"),)),
        ),
    ],
)
def test_what_the_grammar_takes(text, expected):
    assert parse(text, FIELDS) == expected


@pytest.mark.parametrize(
    ("value", "as_compared"),
    [
        ("2026-11-01T12:00:00Z", "2026-11-01T12:00:00.000000Z"),
        ("2026-11-01T12:00:00z", "2026-11-01T12:00:00.000000Z"),  # lower-case z
        ("2026-11-01T13:30:00+01:30", "2026-11-01T12:00:00.000000Z"),  # an offset
        ("2026-11-01T07:00:00.5-05:00", "2026-11-01T12:00:00.500000Z"),  # a fraction
        ("2026-11-01 12:00:00.123456789Z", "2026-11-01T12:00:00.123456Z"),  # nanoseconds cut
        ("2026-11-01", "2026-11-01T00:00:00.000000Z"),  # a date: midnight UTC
    ],
)
def test_a_timestamp_is_compared_in_the_records_form(value, as_compared):
    [predicate] = parse(f"dateLastModified>'{value}'", FIELDS).predicates

    assert predicate.value == as_compared
    assert predicate.moment.isoformat().startswith(as_compared[:19])


def test_contains_takes_any_text_even_on_a_timestamp():
    # `~` compares the record's text: no value is a bad timestamp for it.
    assert parse("dateLastModified~'2026-11'", FIELDS).predicates[0].value == "2026-11"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("(status='active' OR status='tobedeleted')", "parentheses"),
        ("status='active' AND (givenName='x')", "parentheses"),
        ("status='active' AND givenName='x' OR givenName='y'", "not mixed"),
        ("status='active' OR givenName='x' AND givenName='y'", "not mixed"),
        ("shoeSize='42'", "shoeSize is not a field"),
        ("roles='student'", "roles is not a field"),  # an array: not a filter's
        ("user.sourcedId='x'", "user.sourcedId is not a field"),  # an enrollment's, not a user's
        ("status", "an operator"),
        ("status=='active'", "single quotes"),
        ("status=active", "single quotes"),
        ("status='active", "closing quote"),
        ("status='active' AND", "expected AND, OR or the end"),
        ("status='active' and givenName='x'", "expected AND, OR or the end"),  # upper case only
        ("status='active'givenName='x'", "expected AND, OR or the end"),
        ("", "a field name"),
        ("'active'=status", "a field name"),
        ("dateLastModified>'yesterday'", "timestamp"),
        ("dateLastModified>'2026-11-01T12:00:00'", "timestamp"),  # no Z, no offset
        ("dateLastModified>'2026-02-30T12:00:00Z'", "timestamp"),  # no such day
        ("status='a\x00b'", "control characters"),
        ("status='a\nb'", "control characters"),
        ("status='active' AND\tgivenName='x'", "control characters"),  # spaces only
    ],
)
def test_what_the_grammar_refuses(text, says):
    with pytest.raises(Refusal) as refused:
        parse(text, FIELDS)

    assert refused.value.status == 400
    assert refused.value.code_minor == INVALID_FILTER_FIELD
    assert says in refused.value.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [("beginDate", "2026-13-01"), ("beginDate", "2026-1-01"), ("endDate", "tomorrow")],
)
def test_a_date_field_takes_a_date(field, value):
    with pytest.raises(Refusal):
        parse(f"{field}>'{value}'", ENROLLMENT.scalars)
    assert parse(f"{field}>'2026-09-01'", ENROLLMENT.scalars).predicates[0].value == "2026-09-01"


def test_the_bounds():
    most = " AND ".join(["sms=''"] * MAX_PREDICATES)
    assert len(parse(most, FIELDS).predicates) == MAX_PREDICATES
    with pytest.raises(Refusal, match="predicates"):
        parse(most + " AND sms=''", FIELDS)
    longest = "givenName='" + "a" * (MAX_LENGTH - 12) + "'"
    assert len(longest) == MAX_LENGTH
    parse(longest, FIELDS)
    with pytest.raises(Refusal, match="characters"):
        parse(longest[:-1] + "aa'", FIELDS)
