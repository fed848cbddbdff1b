-- Search: ?q= of GET /students and GET /courses in one statement, and the
-- texts the trigram indexes of 0009 cannot narrow refused.
-- depends: 0010_bulk_counts
--
-- search_students() and search_courses() run the two steps of a ?q= search
-- (service/repositories/search.py) in one call, so a search is one round
-- trip, as a plain page is:
--
-- 1. The matches after the cursor, 2001 at most, in no order, with the
--    trigram indexes. Planned without the text: a generic plan, forced by
--    the function's SET clause, which applies only while the function runs
--    (PL/pgSQL keeps the plan for the session, so it is planned once per
--    connection; planned with the text it would cost about 0.9 ms per call).
--    With `bound` or fewer, they are all the matches: sorted by id, the
--    page is their head.
-- 2. More than `bound` match: the text is common; the page comes from a walk
--    of the primary key in id order, which finds a page's worth soon.
--
-- Before either, a text the indexes cannot narrow is refused (SQLSTATE 22023,
-- COLUMN q), see search_narrows(): its LIKE pattern yields no trigram, and
-- the GIN index would then return every row.

set local lock_timeout = '5s';

-- Whether '%' || q || '%' yields a trigram the indexes can look up; false
-- for a q of fewer than three characters (the service's minimum), for
-- which the rule below does not hold ("ab"). pg_trgm splits a
-- LIKE pattern into words of letters and digits (as the database's locale
-- has them: with locale C, ASCII ones only), pads each with two spaces in
-- front and one behind, except next to a wildcard, and keeps the trigrams
-- of the padded words of three characters or more. Next to the leading %
-- is only a word that starts the text; so the pattern has a trigram unless
-- the text has no letter or digit, or only its first character is one
-- ("a..": "a" plus one space is two characters). Said otherwise: the text
-- after its first character has a letter or digit, which show_trgm(), with
-- pg_trgm's own splitting, tells. Folded first, as the columns and the
-- pattern are (folding can make a letter of a character: K, the Kelvin sign,
-- folds to k). tests/test_lookups.py checks this against the index for
-- every text of three and four characters over an alphabet of letters,
-- digits, wildcards and others.
create function search_narrows(q text) returns boolean
language sql immutable strict parallel safe
return char_length(q) >= 3 and show_trgm(substr(fold_case(q), 2)) <> '{}';

-- The LIKE pattern of the values that contain q: its \, % and _ escaped
-- (LIKE's default escape character, the backslash), so they stand for
-- themselves, then folded like the columns (folding maps each character to
-- one and leaves \, % and _ alone).
create function search_pattern(q text) returns text
language sql immutable strict parallel safe
return fold_case('%' || replace(replace(replace(q, '\', '\\'), '%', '\%'), '_', '\_') || '%');

-- Up to lim students whose name or email contains q, with an id above
-- after, in id order. bound: the matches step 1 settles for (2000 in the
-- service, at most 2000: step 1 reads 2001).
create function search_students(after bigint, q text, lim integer, bound integer)
returns setof students
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
declare
    pattern text := search_pattern(q);
    found students[];
begin
    if not search_narrows(q) then
        raise exception 'q % has no trigram the indexes can look up', q
            using errcode = 'invalid_parameter_value', column = 'q';
    end if;
    -- Step 1. A constant limit: with a parameter, a generic plan would guess
    -- a tenth of the rows it expects and, on a small table, walk the
    -- primary key to find them.
    found := array(
        select s from students s
        where (fold_case(s.name) like pattern or fold_case(s.email) like pattern)
          and s.id > after
        limit 2001
    );
    if cardinality(found) <= least(bound, 2000) then
        return query select * from unnest(found) order by 1 limit lim;
    else
        -- Step 2.
        return query
            select s.* from students s
            where (fold_case(s.name) like pattern or fold_case(s.email) like pattern)
              and s.id > after
            order by s.id
            limit lim;
    end if;
end;
$$;

-- The same for courses, by code or title.
create function search_courses(after bigint, q text, lim integer, bound integer)
returns setof courses
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
declare
    pattern text := search_pattern(q);
    found courses[];
begin
    if not search_narrows(q) then
        raise exception 'q % has no trigram the indexes can look up', q
            using errcode = 'invalid_parameter_value', column = 'q';
    end if;
    found := array(
        select c from courses c
        where (fold_case(c.code) like pattern or fold_case(c.title) like pattern)
          and c.id > after
        limit 2001
    );
    if cardinality(found) <= least(bound, 2000) then
        return query select * from unnest(found) order by 1 limit lim;
    else
        return query
            select c.* from courses c
            where (fold_case(c.code) like pattern or fold_case(c.title) like pattern)
              and c.id > after
            order by c.id
            limit lim;
    end if;
end;
$$;
