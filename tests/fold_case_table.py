"""Unicode simple case folding, and the SQL function fold_case() made from it.

migrations/0004_unicode_letter_case.sql makes emails and course codes unique
by fold_case(value): every character replaced by its simple case folding with
PostgreSQL's translate(), from a table written into the function (its
current definition: sql/functions/text.sql). That table comes from here, from
Python's unicodedata, and the tests compare the database's fold_case() with
`fold` below for every code point.

The function, in the migration and in sql/functions/text.sql (there as
`create or replace`), was printed by Python 3.11 (Unicode 14.0) with

    .venv/bin/python -m tests.fold_case_table

Python 3.12 and 3.13 (Unicode 15.0, 15.1) print the same table. A later
Unicode with more case pairs (Python 3.14 has Unicode 16.0) changes what
fold_case() returns, and so what the unique and trigram indexes on it must
hold: they are stale until rebuilt, and rows may collide that did not.

This module lives in tests/ and not next to the migrations because yoyo reads
every .py file in migrations/ as a migration.
"""

from __future__ import annotations

import sys
import unicodedata

# The Unicode version of the table in the migration (Python 3.11's unicodedata).
UNICODE_VERSION = "14.0.0"

SURROGATES = range(0xD800, 0xE000)


def fold(ch: str) -> str:
    """The simple case folding of one character: always exactly one character.

    Python's casefold() is the full folding, which may give several
    characters (ß -> ss); where it does, lower() is the simple mapping when it
    gives one (ẞ -> ß); otherwise the character has no simple folding (İ).
    """
    folded = ch.casefold()
    if len(folded) == 1:
        return folded
    lowered = ch.lower()
    if len(lowered) == 1:
        return lowered
    return ch


def fold_text(text: str) -> str:
    return "".join(map(fold, text))


def code_points() -> list[str]:
    """Every character a PostgreSQL text can hold: all but NUL and the surrogates."""
    return [chr(i) for i in range(1, sys.maxunicode + 1) if i not in SURROGATES]


def table() -> list[tuple[str, str]]:
    """(character, its folding) for every character that folds to another, in code point order."""
    return [(ch, fold(ch)) for ch in code_points() if fold(ch) != ch]


# --- the SQL -----------------------------------------------------------------


def _script(ch: str) -> str:
    """What a line of the table holds, from the character's name: "Latin", "Old Hungarian"."""
    words = unicodedata.name(ch).split()
    if words[0] in ("OLD", "WARANG", "CIRCLED", "FULLWIDTH", "ROMAN", "COMBINING"):
        words = words[:2]
    else:
        words = words[:1]
    return " ".join(words).title()


def _hidden(ch: str) -> bool:
    """Characters that would not read as themselves between quotes.

    A combining mark joins the character before it; a right-to-left letter
    (Adlam) reorders the line around it in an editor.
    """
    return unicodedata.combining(ch) != 0 or unicodedata.bidirectional(ch) in ("R", "AL", "NSM")


def _literal(chars: str) -> str:
    if not any(map(_hidden, chars)):
        return f"'{chars}'"
    escaped = "".join(f"\\u{ord(c):04X}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08X}" for c in chars)
    return f"E'{escaped}'"


def _lines(pairs: list[tuple[str, str]], width: int = 32) -> list[tuple[str, str, str]]:
    """(from literal, to literal, comment) per line: one script at most, `width` characters."""
    lines: list[tuple[str, str, str]] = []
    run: list[tuple[str, str]] = []

    def close() -> None:
        if run:
            first, last = ord(run[0][0]), ord(run[-1][0])
            comment = f"{_script(run[0][0])}, U+{first:04X}..U+{last:04X}"
            if first == last:  # a character of its own: its name says more
                comment = f"{unicodedata.name(run[0][0]).title()}, U+{first:04X}"
            sources = "".join(a for a, _ in run)
            targets = "".join(b for _, b in run)
            lines.append((_literal(sources), _literal(targets), comment))
            run.clear()

    for pair in pairs:
        hidden = _hidden(pair[0]) or _hidden(pair[1])
        # Escapes are ten characters each: fewer of them to a line.
        limit = width // 4 if hidden else width
        if run and (_script(pair[0]) != _script(run[0][0]) or len(run) >= limit):
            close()
        run.append(pair)
    close()
    return lines


def _column(literals: list[tuple[str, str]], indent: str, end: str = "") -> str:
    """Literals joined with ||, one a line, each followed by its comment; `end` after the last."""
    # Comments line up after the plain literals; escaped ones are longer.
    pad = max(len(text) for text, _ in literals if not text.startswith("E'")) + 4
    out = []
    for n, (text, comment) in enumerate(literals):
        code = f"{indent}{'|| ' if n else '   '}{text}{end if n == len(literals) - 1 else ''}"
        out.append(f"{code.ljust(len(indent) + pad)}  -- {comment}")
    return "\n".join(out)


def create_function() -> str:
    """The CREATE FUNCTION statement of fold_case(), as in the migration."""
    pairs = table()
    ascii_from = "".join(a for a, _ in pairs if a.isascii())
    ascii_to = "".join(b for a, b in pairs if a.isascii())
    lines = _lines(pairs)
    indent = " " * 12
    sources = _column([(a, c) for a, _, c in lines], indent, end=",")
    targets = _column([(b, c) for _, b, c in lines], indent)
    return f"""\
create function fold_case(text) returns text
    language sql
    immutable
    parallel safe
    return case
        -- Only ASCII (as many bytes as characters in UTF8): A to Z are all
        -- that folds, and a 26-letter table is much faster to search.
        when pg_catalog.octet_length($1) = pg_catalog.char_length($1)
            then pg_catalog.translate($1, '{ascii_from}', '{ascii_to}')
        else pg_catalog.translate(
            $1,
            -- Every character whose simple case folding is another one
            -- ({len(pairs)} of them), in code point order ...
{sources}
            -- ... and what each folds to, line for line in the same order
            -- (the comments name the characters folded).
{targets}
        )
    end;"""


if __name__ == "__main__":
    print(f"-- Python {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}")
    print(create_function())
