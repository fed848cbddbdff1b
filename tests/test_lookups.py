"""Lookups: ?email=, ?code= and ?q= on /students and /courses, and cursors bound to their list."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
from typing import Any

import asyncpg
import pytest

from service.keys import LIMITS
from service.repositories import courses as courses_repository
from service.repositories import search
from service.repositories import students as students_repository
from service.sql import QUERIES

from .api import create_course, create_student, problem


async def page(client, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def ids(client, path: str, **params: Any) -> list[int]:
    return [item["id"] for item in (await page(client, path, **params))["items"]]


async def refused(client, path: str, **params: Any) -> list[str]:
    """The fields a 422 names."""
    response = await client.get(path, params=params)
    assert response.status == 422, await response.text()
    return [error["field"] for error in (await problem(response))["errors"]]


async def walk_all(client, path: str, limit: int, **filters: Any) -> list[int]:
    """Every id of a filtered list, page by page, following the Link header as given."""
    seen: list[int] = []
    response = await client.get(path, params={**filters, "limit": limit})
    while True:
        assert response.status == 200, await response.text()
        body = await response.json()
        assert len(body["items"]) <= limit
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            assert "Link" not in response.headers
            return seen
        [link] = re.findall(r'^<([^>]+)>; rel="next"$', response.headers["Link"])
        response = await client.get(link)


# --- exact lookups ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("José@Example.org", "JOSÉ@example.org"),  # É and é, the contract's example
        ("élodie@exämple.test", "ÉLODIE@EXÄMPLE.TEST"),  # beyond ASCII, where lower() in C fails
        ("ivan@пример.test", "IVAN@ПРИМЕР.TEST"),  # Cyrillic
        ("ada@example.org", "  ada@example.org\t"),  # trimmed like the field
    ],
)
async def test_email_finds_the_student_in_any_letter_case(client, stored, asked):
    student = await create_student(client, email=stored)
    await create_student(client)

    body = await page(client, "/students", email=asked)

    assert body == {"items": [student], "next_cursor": None}


async def test_email_is_exact_not_a_substring(client):
    await create_student(client, email="jose@example.org")  # no accent: another email
    await create_student(client, email="xjosé@example.org")

    assert await page(client, "/students", email="josé@example.org") == {
        "items": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(("stored", "asked"), [("Ärzte-1", "ärzte-1"), ("CS-101", "cs-101")])
async def test_code_finds_the_course_in_any_letter_case(client, stored, asked):
    course = await create_course(client, code=stored)
    await create_course(client)

    body = await page(client, "/courses", code=asked)

    assert body == {"items": [course], "next_cursor": None}


async def test_no_match_is_an_empty_page(client):
    await create_student(client)
    await create_course(client)

    assert await page(client, "/students", email="nobody@example.org") == {
        "items": [],
        "next_cursor": None,
    }
    assert await page(client, "/courses", code="NOPE-1") == {"items": [], "next_cursor": None}
    assert await page(client, "/students", q="nobody") == {"items": [], "next_cursor": None}
    assert await page(client, "/courses", q="nothing") == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/students", {"email": "not-an-email"}, "email"),  # no @: no student has it
        ("/students", {"email": ""}, "email"),
        ("/courses", {"code": "CS 101"}, "code"),  # white space, as the field refuses
        ("/courses", {"code": "x" * 33}, "code"),
        ("/students", {"q": "ab"}, "q"),  # too short
        ("/students", {"q": "  ab  "}, "q"),  # two characters once trimmed
        ("/students", {"q": "x" * 101}, "q"),  # too long
        ("/courses", {"q": ""}, "q"),
        ("/students", {"q": "a\x01b"}, "q"),  # a control character
        ("/students", {"emial": "a@b.c"}, "emial"),  # a typo is not "no filter"
        ("/courses", {"email": "a@b.c"}, "email"),  # a filter of the other list
    ],
)
async def test_bad_filters_are_422_naming_them(client, path, params, field):
    assert await refused(client, path, **params) == [field]


async def test_every_bad_parameter_is_named_at_once(client):
    fields = await refused(client, "/students", q="ab", limit="0", cursor="nonsense")
    assert sorted(fields) == ["cursor", "limit", "q"]


# --- ?q= --------------------------------------------------------------------------


async def test_q_finds_students_by_name_or_email_in_any_letter_case(client):
    zoe = await create_student(client, name="Zoë Ångström", email="zoe@example.org")
    kwame = await create_student(client, name="Kwame", email="kwame@accra.test")
    bob = await create_student(client, name="Bob", email="bob@example.org")

    assert await ids(client, "/students", q="ångs") == [zoe["id"]]  # name
    assert await ids(client, "/students", q="ZOË ÅNG") == [zoe["id"]]  # inner space kept
    assert await ids(client, "/students", q="ACCRA") == [kwame["id"]]  # email only
    assert await ids(client, "/students", q="example.ORG") == [zoe["id"], bob["id"]]


async def test_q_finds_courses_by_code_or_title(client):
    maths = await create_course(client, code="MATH-201", title="Linear Algebra")
    physics = await create_course(client, code="PHY-1", title="Mécanique")
    await create_course(client, code="ART-1", title="Drawing")

    assert await ids(client, "/courses", q="math") == [maths["id"]]  # code
    assert await ids(client, "/courses", q="ALGEB") == [maths["id"]]  # title
    assert await ids(client, "/courses", q="MÉCA") == [physics["id"]]  # É and é
    assert await ids(client, "/courses", q="Y-1") == [physics["id"]]


async def test_q_never_matches_across_the_name_and_the_email(client):
    # name || email would be "Annabel@x.test": "nabel" spans the two.
    await create_student(client, name="Ann", email="abel@x.test")

    assert await ids(client, "/students", q="nnabe") == []
    assert await ids(client, "/students", q="Ann") != []


@pytest.mark.parametrize(
    ("names", "q", "found"),
    [
        (["100% Pure", "1000 Pure"], "0% P", [0]),  # % is itself, not "anything"
        (["a_b_c", "axbxc"], "a_b", [0]),  # _ is itself, not "any character"
        (["back\\slash", "backslash"], "k\\s", [0]),  # a backslash is itself too
        (["50%_off", "50xoff"], "%_o", [0]),
    ],
)
async def test_wildcards_in_q_are_literal(client, names, q, found):
    made = [await create_student(client, name=name) for name in names]

    assert await ids(client, "/students", q=q) == [made[i]["id"] for i in found]


async def test_email_and_q_together_both_apply(client):
    ada = await create_student(client, name="Ada Lovelace", email="ada@example.org")
    await create_student(client, name="Ada King", email="king@example.org")

    assert await ids(client, "/students", email="ADA@example.org", q="love") == [ada["id"]]
    assert await ids(client, "/students", email="ADA@example.org", q="king") == []


# --- pages and cursors ------------------------------------------------------------


async def test_q_pages_walk_every_match_once_in_id_order(client):
    matching = []
    for n in range(23):
        student = await create_student(client, name=f"Lovelace {n}")
        matching.append(student["id"])
        await create_student(client, name=f"Other {n}")  # between every two matches

    for limit in (1, 4, 23, 50):
        assert await walk_all(client, "/students", limit, q="lovelace") == matching


async def test_the_link_header_keeps_the_filters(client):
    for n in range(3):
        await create_student(client, name=f"Grace Hopper {n}")
    response = await client.get("/students", params={"q": "grace h", "limit": 2})
    body = await response.json()

    [link] = re.findall(r'^<([^>]+)>; rel="next"$', response.headers["Link"])

    assert link.startswith("/students?")
    assert "q=grace+h" in link or "q=grace%20h" in link
    assert f"cursor={body['next_cursor']}" in link and "limit=2" in link


async def test_a_cursor_is_valid_only_for_its_list_and_filters(client):
    for n in range(3):
        await create_student(client, name=f"Lovelace {n}", email=f"lovelace{n}@example.org")
        await create_course(client, code=f"LOVE-{n}", title=f"Lovelace {n}")
    cursor = (await page(client, "/students", q="lovelace", limit=1))["next_cursor"]
    plain = (await page(client, "/students", limit=1))["next_cursor"]
    assert cursor and plain

    # Its own list and filters: fine, with any limit.
    assert await ids(client, "/students", q="lovelace", cursor=cursor, limit=5)
    # Other filters, no filters, another list: 422 naming the cursor.
    assert await refused(client, "/students", q="lovelacf", cursor=cursor) == ["cursor"]
    assert await refused(client, "/students", q="LOVELACE", cursor=cursor) == ["cursor"]
    assert await refused(client, "/students", cursor=cursor) == ["cursor"]
    assert await refused(client, "/students", q="lovelace", email="a@b.c", cursor=cursor) == [
        "cursor"
    ]
    assert await refused(client, "/courses", q="lovelace", cursor=cursor) == ["cursor"]
    # An unfiltered list's cursor is bound as well.
    assert await refused(client, "/courses", cursor=plain) == ["cursor"]
    assert await refused(client, "/students", q="lovelace", cursor=plain) == ["cursor"]
    student = (await page(client, "/students", limit=1))["items"][0]["id"]
    assert await refused(client, f"/students/{student}/courses", cursor=plain) == ["cursor"]


def v1(last_id: int) -> str:
    """A cursor as the service issued them before they were bound to a list."""
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


async def test_cursors_from_before_binding_still_walk_the_lists_without_filters(client):
    made = [(await create_student(client, name=f"Lovelace {n}"))["id"] for n in range(3)]

    # A walk a client began before an upgrade goes on.
    assert await ids(client, "/students", cursor=v1(made[0])) == made[1:]
    # Filters did not exist then: no such cursor can be theirs.
    assert await refused(client, "/students", q="lovelace", cursor=v1(made[0])) == ["cursor"]


async def test_feed_cursors_are_bound_to_the_feeds_filters(client):
    a = await create_student(client)
    b = await create_student(client)
    cursor = (await page(client, "/events", student_id=a["id"]))["next_cursor"]

    assert await ids(client, "/events", student_id=a["id"], cursor=cursor) == []
    assert await refused(client, "/events", student_id=b["id"], cursor=cursor) == ["cursor"]
    assert await refused(client, "/events", cursor=cursor) == ["cursor"]
    # wait is no filter: a follower may change it.
    assert await ids(client, "/events", student_id=a["id"], cursor=cursor, wait=0) == []
    # A follower's cursor from before the upgrade still works, filters or not.
    assert await ids(client, "/events", student_id=b["id"], cursor=v1(1)) == [
        event["id"] for event in (await page(client, "/events", student_id=b["id"]))["items"]
    ]


# --- the plan ---------------------------------------------------------------------


async def test_the_search_functions_plan_generically_and_only_while_they_run(db):
    # Planned with the text, the index step costs more to plan than to run
    # (service/repositories/search.py): the functions force a generic plan
    # for their own statements, whatever the session's setting.
    # Those the service calls (the courses' older signature, kept for a release, calls
    # the newer).
    rows = await db.fetch(
        "select proname, proconfig from pg_proc where oid in ("
        " 'search_student_page(bigint, text, integer, integer, jsonb, real)'::regprocedure,"
        " 'search_course_page(bigint, text, integer, integer, jsonb, real, bigint)'::regprocedure)"
        " order by proname"
    )
    # And restore the scans they turn off around the index step.
    settings = ["plan_cache_mode=force_generic_plan", "enable_indexscan=on", "enable_seqscan=on"]
    assert [(row["proname"], row["proconfig"]) for row in rows] == [
        ("search_course_page", settings),
        ("search_student_page", settings),
    ]

    await db.execute("set plan_cache_mode = force_custom_plan; set enable_seqscan = off")
    await students_repository.list_page(db, after=0, limit=50, q="ada")

    assert await db.fetchval("show plan_cache_mode") == "force_custom_plan"
    assert await db.fetchval("show enable_seqscan") == "off"
    assert await db.fetchval("show enable_indexscan") == "on"


async def analyzed(db) -> None:
    """ANALYZE students and courses (their trigram statistics), and forget what was read before."""
    await db.execute("analyze students, courses")
    search.forget_heavy()


@pytest.mark.parametrize(("name", "heavy_rows"), [("Ada Lovelace", 5000), ("Common", 1)])
async def test_a_search_is_one_statement(client, db, name, heavy_rows):
    # One round trip, as a plain page: the search statement only, with no
    # transaction around it (BEGIN, SET, COMMIT) and no second query, for
    # text the index looks up and for text made of heavy trigrams (here, in
    # one row or more: every trigram), which is walked.
    for n in range(6):
        await create_student(client, name=f"{name} {n}")
    await analyzed(db)
    # The heavy trigrams, read once a minute per connection.
    await students_repository.list_page(db, after=0, limit=2, q=name, heavy_rows=heavy_rows)
    statements: list[str] = []

    def log(logged) -> None:
        statements.append(logged.query)

    db.add_query_logger(log)
    try:
        page_ = await students_repository.list_page(
            db, after=0, limit=2, q=name, heavy_rows=heavy_rows
        )
        await asyncio.sleep(0)  # asyncpg calls the loggers soon after, not at once
    finally:
        db.remove_query_logger(log)

    assert [student.name for student in page_.items] == [f"{name} 0", f"{name} 1"]
    assert statements == [QUERIES.search.students]


async def walk_repository(db, list_page, limit: int, **options: Any) -> list[list[int]]:
    """Every page's ids, page by page, from the repository."""
    pages, after = [], 0
    while True:
        page_ = await list_page(db, after=after, limit=limit, **options)
        pages.append([item.id for item in page_.items])
        if page_.last_key is None:
            return pages
        after = page_.last_key


@pytest.mark.parametrize("heavy_rows", [1, 5000])
async def test_walked_pages_hold_every_match_once_in_id_order(client, db, heavy_rows):
    # Text made of heavy trigrams (every trigram, with heavy_rows 1) is
    # walked 5 rows at a time: its pages may hold fewer items than the
    # limit, even none, and still lead on; walking them all gives every
    # match once, in order, as the index does (heavy_rows 5000: nothing is).
    matching = []
    for n in range(12):
        matching.append((await create_student(client, name=f"Common {n}"))["id"])
        for _ in range(n % 3):
            await create_student(client, name=f"Other {n}")
    await analyzed(db)

    pages = await walk_repository(
        db, students_repository.list_page, 4, q="commo", walk=5, heavy_rows=heavy_rows
    )

    assert [id_ for page_ in pages for id_ in page_] == matching
    assert all(len(page_) <= 4 for page_ in pages)
    if heavy_rows == 1:
        assert any(len(page_) < 4 for page_ in pages[:-1])  # short pages that lead on
    else:
        assert [len(page_) for page_ in pages] == [4, 4, 4]


async def test_walked_course_pages_hold_every_match_once_in_id_order(client, db):
    matching = []
    for n in range(7):
        matching.append((await create_course(client, code=f"MATH-{n}", title="Algebra"))["id"])
        await create_course(client, code=f"ART-{n}", title="Drawing")
    await analyzed(db)

    pages = await walk_repository(
        db, courses_repository.list_page, 2, q="ALGEB", walk=3, heavy_rows=1
    )

    assert [id_ for page_ in pages for id_ in page_] == matching
    assert len(pages) > len(matching) / 2  # walked, not looked up


# --- the bound -----------------------------------------------------------------

# Enough students that reading them all shows: emails sharing one domain,
# as a school's do, and the last ADVERSARIAL_LATE (more than the 2,000
# matches the index step settles for) named apart, at the end of the id order.
ADVERSARIAL_STUDENTS = 30_000
ADVERSARIAL_LATE = 3_000


async def load_adversarial(db) -> None:
    await db.execute(
        "insert into students (name, email)"
        " select case when n > $1 then 'Latecomer ' else 'Student ' end || n,"
        "        'student' || n || '@school.example.edu'"
        " from generate_series(1, $2) n",
        ADVERSARIAL_STUDENTS - ADVERSARIAL_LATE,
        ADVERSARIAL_STUDENTS,
    )
    await analyzed(db)


async def rows_read(db, statement: str, *args: Any) -> tuple[list[asyncpg.Record], int]:
    """What `statement` returns, and how many rows of students it read, by the table's counters."""
    async with db.transaction():
        rows = await db.fetch(statement, *args)
        read = await db.fetchval(
            "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
            " from pg_stat_xact_user_tables where relid = 'students'::regclass"
        )
    return rows, read


# Common trigrams that match nothing (each trigram in every email or every
# name, the text in none), and text only the last ids match.
ADVERSARIAL_TEXTS = [
    "edu@school",
    "example.school",
    "hool.example.edu.sch",
    "student student",
    "latecomer",
]


@pytest.mark.parametrize("text", ADVERSARIAL_TEXTS)
async def test_no_search_reads_more_than_its_bound(client, db, text):
    await load_adversarial(db)
    args = (0, text, 51, search.WALK, await search.heavy(db), search.INDEX_BUDGET)

    rows, read = await rows_read(db, QUERIES.search.students, *args)

    # The walk: WALK rows, twice (the rows, then the walk's end by the
    # primary key alone), and a row for where it ended. "latecomer" (3,000
    # rows, not heavy) is looked up first: more than 2,000 matches, so walked.
    looked_up = 2001 if text == "latecomer" else 0
    assert read <= looked_up + 2 * search.WALK, read
    assert [row["id"] for row in rows] == [search.WALK]
    assert rows[-1]["name"] is None


async def test_rare_text_is_looked_up_in_the_index_among_many_rows(client, db):
    # "12345@": trigrams in few emails (45 followed by @: one in a hundred).
    await load_adversarial(db)
    args = (0, "12345@", 51, search.WALK, await search.heavy(db), search.INDEX_BUDGET)

    rows, read = await rows_read(db, QUERIES.search.students, *args)

    assert [row["id"] for row in rows] == [12345]  # no walk's end: the index answered
    assert read <= 20, read


async def test_adversarial_texts_through_the_api_answer_pages_that_lead_on(client, db):
    await load_adversarial(db)

    for text in ADVERSARIAL_TEXTS:
        body = await page(client, "/students", q=text, limit=50)
        assert body["next_cursor"] is not None, text
        assert len(body["items"]) <= 50
    # Walking "latecomer" to its end finds every late student, in order.
    late = await walk_all(client, "/students", 500, q="LATECOMER")
    first_late = ADVERSARIAL_STUDENTS - ADVERSARIAL_LATE + 1
    assert late == list(range(first_late, ADVERSARIAL_STUDENTS + 1))


class Full(dict):
    """Every client's places taken."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get(self, key, default=None):
        return self.size


@pytest.mark.parametrize("path", ["/students", "/courses"])
async def test_a_search_holds_a_place_of_its_clients_search_limit_and_a_plain_list_none(
    client, path
):
    searches = client.app[LIMITS].searches
    searches.held = Full(searches.size)

    assert (await client.get(path, params={"q": "lovelace"})).status == 429
    assert (await client.get(path)).status == 200


async def test_every_search_gives_its_place_back_however_it_ends(client):
    await create_student(client, name="Ada Lovelace")
    texts = ["lovelace", "...", "nobody", "a..", "ada l"] * 6  # answered, refused

    answers = await asyncio.gather(*(client.get("/students", params={"q": t}) for t in texts))

    assert {response.status for response in answers} <= {200, 422, 429}
    assert client.app[LIMITS].searches.held == {}


@pytest.mark.parametrize(
    ("text", "trigrams"),
    [
        ("qjkrz", ["jkr", "krz", "qjk"]),  # no padding: the text touches both wildcards
        ("Ada L", ["  l", "ada", "da "]),  # inner word ends padded, not the text's ends
        (".ab.", ["  a", " ab", "ab "]),  # a word inside non-word characters: padded
    ],
)
async def test_the_pattern_trigrams_are_those_pg_trgm_looks_up(db, text, trigrams):
    assert sorted(await db.fetchval("select search_pattern_trigrams($1)", text)) == trigrams


async def test_search_fold_is_fold_case(db):
    # The walk's cheaper folding (sql/functions/search.sql) agrees with fold_case()
    # for every code point, alone and inside ASCII text.
    differ = await db.fetch(
        "select i from generate_series(1, 1114111) i"
        " where i not between 55296 and 57343"
        "   and (search_fold(chr(i)) is distinct from fold_case(chr(i))"
        "        or search_fold('Ab' || chr(i)) is distinct from fold_case('Ab' || chr(i)))"
        " limit 10"
    )
    assert differ == []
    assert await db.fetchval("select search_fold('ÀBC-Éd')") == "àbc-éd"


# --- text the indexes cannot narrow -----------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/students", {"q": "..."}),  # no letter or digit
        ("/students", {"q": "a.."}),  # only the first: "a" with one space of padding
        ("/students", {"q": "9 -"}),
        ("/courses", {"q": "%_%"}),  # wildcards are themselves, and no letters
        ("/courses", {"q": "x-- "}),
        ("/students", {"q": "...", "email": "ada@example.org"}),  # refused alike
        ("/courses", {"q": "...", "code": "CS-101"}),
    ],
)
async def test_q_the_trigram_indexes_cannot_narrow_is_422_naming_q(client, path, params):
    await create_student(client, name="a...", email="ada@example.org")
    await create_course(client, code="CS-101", title="x-- ...")

    response = await client.get(path, params=params)

    assert response.status == 422, await response.text()
    assert (await problem(response))["errors"] == [
        {"field": "q", "message": "must contain a letter or digit after its first character"}
    ]


@pytest.mark.parametrize("q", ["a.b", ".ab", "ab.", "..a", "a%b", "1-2"])
async def test_q_with_a_letter_or_digit_after_its_first_character_is_searched(client, q):
    student = await create_student(client, name=f"x {q} y")
    await create_student(client, name="Other")

    assert await ids(client, "/students", q=q) == [student["id"]]


# Texts of three and four characters over letters, digits, white space,
# wildcards and characters pg_trgm may or may not count as letters (é, and
# K, the Kelvin sign, which folds to k).
NARROWING_CASES = [
    "".join(chars)
    for length, alphabet in ((3, "a1. %_\\é"), (4, "a.%\u212a"))
    for chars in itertools.product(alphabet, repeat=length)
]


async def test_the_refusal_rule_is_what_the_trigram_index_does(db):
    # search_narrows() (sql/functions/search.sql) against the index itself: a GIN
    # trigram index on rows that none of these texts match returns no row
    # for a pattern with a trigram, and every row for one without (it reads
    # the whole index).
    await db.execute(
        "create temporary table narrowing (v text);"
        " insert into narrowing select 'qqqq' from generate_series(1, 20);"
        " create index on narrowing using gin (fold_case(v) gin_trgm_ops);"
        " analyze narrowing"
    )
    await db.execute("set enable_seqscan = off")
    wrong = []
    for text in NARROWING_CASES:
        [plan] = json.loads(
            await db.fetchval(
                "explain (analyze, costs off, timing off, summary off, format json)"
                " select from narrowing where fold_case(v) like search_pattern($1)",
                text,
            )
        )
        [scan] = [node for node in walk(plan["Plan"]) if node["Node Type"] == "Bitmap Index Scan"]
        narrowed = scan["Actual Rows"] == 0
        if await db.fetchval("select search_narrows($1)", text) != narrowed:
            wrong.append((text, narrowed))

    assert len(NARROWING_CASES) == 8**3 + 4**4
    assert not wrong, f"search_narrows() differs from the index (text, narrowed): {wrong}"


def walk(plan: dict[str, Any]):
    yield plan
    for child in plan.get("Plans", []):
        yield from walk(child)
