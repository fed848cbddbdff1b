-- ?q=, the bounded search: search_student_page() and search_course_page()
-- answer a page of the rows that contain a text, in id order, examining a
-- bounded number of rows: through the trigram indexes of migration 0009
-- when the heavy trigrams (the extended statistics of migration 0013) say
-- that is affordable, else by walking the next rows in id order. The
-- service's statements are in sql/search.sql, its bounds in
-- service/repositories/search.py.

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
create or replace function search_narrows(q text) returns boolean
language sql immutable strict parallel safe
return char_length(q) >= 3 and show_trgm(substr(fold_case(q), 2)) <> '{}';

-- The LIKE pattern of the values that contain q: its \, % and _ escaped
-- (LIKE's default escape character, the backslash), so they stand for
-- themselves, then folded like the columns (folding maps each character to
-- one and leaves \, % and _ alone).
create or replace function search_pattern(q text) returns text
language sql immutable strict parallel safe
return fold_case('%' || replace(replace(replace(q, '\', '\\'), '%', '\%'), '_', '\_') || '%');

-- The trigrams pg_trgm looks up for '%' || q || '%' (search_pattern()):
-- show_trgm()'s, less the padding at q's two ends where a word touches the
-- wildcard. Those are exactly the ones a letter added at each end removes:
-- what show_trgm() gives for q and for 'x' || q || 'x' alike.
create or replace function search_pattern_trigrams(q text) returns text[]
language sql immutable strict parallel safe
return array(
    select unnest(show_trgm(fold_case(q)))
    intersect
    select unnest(show_trgm('x' || fold_case(q) || 'x'))
);

-- {statistics object: {trigram: rows}} for the extended statistics of
-- migration 0013 (students_name_trigrams and the three others, the most
-- common elements of show_trgm() of each folded column, as ANALYZE last
-- made them), the trigrams in at least `rows_at_least` rows (their share
-- times the table's estimated rows). Security definer: the statistics are
-- visible to the tables' owner only.
create or replace function search_heavy_trigrams(rows_at_least real)
returns jsonb
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select coalesce(jsonb_object_agg(e.statistics_name, (
               select coalesce(jsonb_object_agg(m.t, round(m.f * c.reltuples)), '{}')
               from unnest(e.most_common_elems::text::text[], e.most_common_elem_freqs)
                    as m (t, f)
               where m.t is not null and m.f * c.reltuples >= rows_at_least
           )), '{}')
    from pg_stats_ext_exprs e
    join pg_namespace n on n.nspname = e.schemaname
    join pg_class c on c.relnamespace = n.oid and c.relname = e.tablename
    where e.statistics_name in ('students_name_trigrams', 'students_email_trigrams',
                                'courses_code_trigrams', 'courses_title_trigrams')
      and e.most_common_elems is not null and c.reltuples > 0
$$;

-- Whether GIN may look `grams` up in a column whose heavy trigrams are
-- `heavy` ({trigram: rows}, null: none known): one of them is not heavy,
-- and the heavy ones' lists hold at most `budget` rows together.
create or replace function search_affordable(grams text[], heavy jsonb, budget real) returns boolean
language sql immutable parallel safe
return exists (select from unnest(grams) as g where not coalesce(heavy ? g, false))
   and (select coalesce(sum((heavy ->> g)::real), 0) from unnest(grams) as g) <= budget;

-- fold_case() (text.sql), cheaper on ASCII text: lower() under the C
-- collation changes A to Z alone, as fold_case()'s ASCII branch does with
-- translate(), about ten times faster (translate(): 10 us a value). For the
-- walk, which folds every row it examines; the indexes' rechecks must use
-- fold_case(), their expression. tests/test_lookups.py checks the two
-- agree. Not strict, so that the planner inlines it as it does fold_case()
-- (a strict function inlines only into a strict expression, and a CASE is
-- not); called instead, every statement would set it up again (0.5 ms).
create or replace function search_fold(v text) returns text
language sql immutable parallel safe
return case
    when octet_length(v) = char_length(v) then lower(v collate "C")
    else fold_case(v)
end;

-- Up to lim students after `after` whose name or email contains q, in id
-- order, then, if the walk ran and rows remain, the walk's end (a row with
-- only its id). heavy: search_heavy_trigrams()'s answer; budget: the rows
-- the heavy trigrams' lists may hold; walk: the rows a walk examines.
-- The index runs only when affordable in both columns (search_affordable()),
-- and only its first 2,000 matches are kept: more, and the walk answers, so
-- either way the rows examined are bounded. Both give exactly the matches,
-- in id order: a wrong statistic changes only which one runs.
create or replace function search_student_page(
    after bigint, q text, lim integer, walk integer, heavy jsonb, budget real
)
returns setof students
language plpgsql stable
set plan_cache_mode = force_generic_plan
set enable_indexscan = on
set enable_seqscan = on
as $$
declare
    pattern text := search_pattern(q);
    grams text[] := search_pattern_trigrams(q);
    found students[];
    walked integer;
    ended students;
begin
    if not search_narrows(q) then
        raise exception 'q % has no trigram the indexes can look up', q
            using errcode = 'invalid_parameter_value', column = 'q';
    end if;
    if search_affordable(grams, heavy -> 'students_name_trigrams', budget)
       and search_affordable(grams, heavy -> 'students_email_trigrams', budget) then
        -- 1. The index, with a constant limit: with a parameter, a generic
        -- plan would guess a tenth of the rows it expects. Planned (once per
        -- session, the plan kept) with index and sequential scans off, so
        -- that it is the trigram indexes' bitmap whatever the table's size
        -- (planned without the text, it walks the primary key below about
        -- 50,000 rows, reading every row before a late match), and on
        -- id + 0, which no index serves (else a bitmap of the primary key).
        perform set_config('enable_indexscan', 'off', true), set_config('enable_seqscan', 'off', true);
        found := array(
            select s from students s
            where (fold_case(s.name) like pattern or fold_case(s.email) like pattern)
              and s.id + 0 > after
            limit 2001
        );
        perform set_config('enable_indexscan', 'on', true), set_config('enable_seqscan', 'on', true);
        if cardinality(found) <= 2000 then
            return query select * from unnest(found) order by 1 limit lim;
            return;
        end if;
    end if;
    -- 2. The walk: the next `walk` rows, matching or not; then its end.
    return query
        select w.* from (select * from students s where s.id > after order by s.id limit walk) w
        where search_fold(w.name) like pattern or search_fold(w.email) like pattern
        order by w.id limit lim;
    select count(*), max(w.id) into walked, ended.id
    from (select s.id from students s where s.id > after order by s.id limit walk) w;
    if walked = walk then
        return next ended;
    end if;
end;
$$;

-- The same for courses, by code or title, of term `term` only when it is
-- not null (?term_id=); the walk's end is a row with only its id. With a
-- term, the walk takes the term's next rows (the index courses_term_id of
-- migration 0016), so it examines `walk` rows of the term however few the
-- term holds.
create or replace function search_course_page(
    after bigint, q text, lim integer, walk integer, heavy jsonb, budget real, term bigint
)
returns setof courses
language plpgsql stable
set plan_cache_mode = force_generic_plan
set enable_indexscan = on
set enable_seqscan = on
as $$
declare
    pattern text := search_pattern(q);
    grams text[] := search_pattern_trigrams(q);
    found courses[];
    walked integer;
    ended courses;
begin
    if not search_narrows(q) then
        raise exception 'q % has no trigram the indexes can look up', q
            using errcode = 'invalid_parameter_value', column = 'q';
    end if;
    if search_affordable(grams, heavy -> 'courses_code_trigrams', budget)
       and search_affordable(grams, heavy -> 'courses_title_trigrams', budget) then
        perform set_config('enable_indexscan', 'off', true), set_config('enable_seqscan', 'off', true);
        found := array(
            select c from courses c
            where (fold_case(c.code) like pattern or fold_case(c.title) like pattern)
              and c.id + 0 > after and (term is null or c.term_id = term)
            limit 2001
        );
        perform set_config('enable_indexscan', 'on', true), set_config('enable_seqscan', 'on', true);
        if cardinality(found) <= 2000 then
            return query select * from unnest(found) order by 1 limit lim;
            return;
        end if;
    end if;
    if term is null then
        return query
            select w.* from (select * from courses c where c.id > after order by c.id limit walk) w
            where search_fold(w.code) like pattern or search_fold(w.title) like pattern
            order by w.id limit lim;
        select count(*), max(w.id) into walked, ended.id
        from (select c.id from courses c where c.id > after order by c.id limit walk) w;
    else
        return query
            select w.* from (
                select * from courses c where c.term_id = term and c.id > after
                order by c.id limit walk
            ) w
            where search_fold(w.code) like pattern or search_fold(w.title) like pattern
            order by w.id limit lim;
        select count(*), max(w.id) into walked, ended.id
        from (
            select c.id from courses c where c.term_id = term and c.id > after
            order by c.id limit walk
        ) w;
    end if;
    if walked = walk then
        return next ended;
    end if;
end;
$$;

-- The signature before ?term_id= (release of migration 0015), kept for one
-- release: instances of that release call it during a rolling deploy. A
-- later release drops it in a migration (docs/development.md, "Functions
-- and triggers").
create or replace function search_course_page(
    after bigint, q text, lim integer, walk integer, heavy jsonb, budget real
)
returns setof courses
language sql stable
as $$
    select * from search_course_page(after, q, lim, walk, heavy, budget, null::bigint)
$$;
