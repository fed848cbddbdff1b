"""service/sql.py: named queries, and :name parameters numbered as PostgreSQL takes them."""

from __future__ import annotations

import pytest

from service.sql import QUERIES, Named, parse


def test_named_parameters_become_numbered_in_order_of_first_appearance():
    [(name, query)] = parse(
        "-- name: rename\n"
        "-- A comment is left out.\n"
        "update terms set title = :title, code = coalesce(:code, code)\n"
        "where id = :term_id and xmin::text = any(:if_match::text[])\n"
        "  and title <> :title;\n"
    ).items()

    assert name == "rename"
    assert query == Named(
        "update terms set title = $1, code = coalesce($2, code)\n"
        "where id = $3 and xmin::text = any($4::text[])\n"
        "  and title <> $1",
        ("title", "code", "term_id", "if_match"),
    )
    assert query.bind(code=None, term_id=7, title="T", if_match=["1"]) == (
        query.sql,
        "T",
        None,
        7,
        ["1"],
    )


@pytest.mark.parametrize(
    "values",
    [
        {"a": 1},  # b missing
        {"a": 1, "b": 2, "c": 3},  # c unknown
    ],
)
def test_bind_refuses_a_missing_or_unknown_name(values):
    [query] = parse("-- name: q\nselect :a, :b;").values()

    with pytest.raises(TypeError):
        query.bind(**values)


def test_casts_slices_and_times_are_not_names():
    statement = "select x::text, a[1:n], '09:30', $1 from t"

    assert parse(f"-- name: q\n{statement};") == {"q": statement}


def test_a_statement_may_not_mix_names_and_numbers():
    with pytest.raises(ValueError, match="mixes"):
        parse("-- name: q\nselect :a, $1;")


def test_the_statements_with_numbers_stay_strings_as_asyncpg_takes_them():
    assert type(QUERIES.courses.update_course) is str
