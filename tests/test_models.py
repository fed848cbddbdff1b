"""Rows become models by column name, whatever order a query gives its columns."""

from __future__ import annotations

from datetime import UTC, datetime

from service.models import Student, from_row, from_rows

AT = datetime(2026, 12, 7, tzinfo=UTC)


async def test_a_row_is_read_by_column_name_in_any_order(db):
    row = await db.fetchrow(
        "select $1::timestamptz as created_at, 'a@x.org' as email, 'u-ada' as sourced_id,"
        " 7::bigint as id, 'Ada' as name",
        AT,
    )
    assert from_row(Student, row) == Student(
        id=7, name="Ada", email="a@x.org", created_at=AT, sourced_id="u-ada"
    )


async def test_a_result_is_read_by_name_in_its_order_or_in_another(db):
    in_order = await db.fetch(
        "select g::bigint as id, 'S' || g as name, g || '@x.org' as email, $1::timestamptz"
        " as created_at, 'u' || g as sourced_id from generate_series(1, 3) g",
        AT,
    )
    shuffled = await db.fetch(
        "select 'u' || g as sourced_id, g || '@x.org' as email, $1::timestamptz as created_at,"
        " 'S' || g as name, g::bigint as id from generate_series(1, 3) g",
        AT,
    )
    expected = [
        Student(id=g, name=f"S{g}", email=f"{g}@x.org", created_at=AT, sourced_id=f"u{g}")
        for g in (1, 2, 3)
    ]

    assert from_rows(Student, in_order) == expected
    assert from_rows(Student, shuffled) == expected
    assert from_rows(Student, []) == []
