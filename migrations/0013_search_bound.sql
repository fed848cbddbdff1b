-- Search bound: no ?q= search examines more than a bounded number of rows.
-- depends: 0012_queue_sets
--
-- The search functions of 0011 read whatever the trigram indexes hand them:
-- for a text whose trigrams every row holds ("example@bench" against
-- emails all ending in @bench.example) the index returns every row, each
-- rechecked and dropped (9 s at 1,100,000 students; building the bitmap
-- alone took 260 ms); for a text matching many rows late in id order
-- ("reserved", only the highest ids), the walk in id order read every row
-- before them.
--
-- search_student_page() and search_course_page() bound both:
--
-- 1. The index, only when it is affordable in each searched column: one of
--    the trigrams it looks up is in fewer rows than the service's bound
--    (5,000), so it rechecks fewer candidates than that, and the lists of
--    rows of the others (GIN reads every looked-up trigram's list, even when
--    another is rare: 54 ms for five lists of 1,100,000) hold together at
--    most the service's budget (100,000). Row counts as ANALYZE last made
--    them (the extended statistics below, read by search_heavy_trigrams()
--    and passed in by the service). Its 2,001 matches at most are sorted by
--    id, as in 0011.
-- 2. Otherwise, or with more than 2,000 matches, a walk of the next `walk`
--    rows in id order (the service: 200), whatever they hold: the page is
--    the matches among them, then, when rows remain after them, a last row
--    with only an id, the walk's end, where the next page resumes. Such a
--    page may hold fewer items than asked, even none, and still lead on.
--
-- A wrong or missing statistic only changes which of the two runs: both
-- answer exactly the matches, in id order, page after page.

set local lock_timeout = '5s';

-- Per column, how many rows hold each trigram: ANALYZE (and autovacuum's)
-- keeps them as the most common elements of show_trgm() of the folded value.
create statistics if not exists students_name_trigrams on (show_trgm(fold_case(name))) from students;
create statistics if not exists students_email_trigrams on (show_trgm(fold_case(email))) from students;
create statistics if not exists courses_code_trigrams on (show_trgm(fold_case(code))) from courses;
create statistics if not exists courses_title_trigrams on (show_trgm(fold_case(title))) from courses;

-- The trigrams pg_trgm looks up for '%' || q || '%' (search_pattern()):
-- show_trgm()'s, less the padding at q's two ends where a word touches the
-- wildcard. Those are exactly the ones a letter added at each end removes:
-- what show_trgm() gives for q and for 'x' || q || 'x' alike.
create function search_pattern_trigrams(q text) returns text[]
language sql immutable strict parallel safe
return array(
    select unnest(show_trgm(fold_case(q)))
    intersect
    select unnest(show_trgm('x' || fold_case(q) || 'x'))
);

-- {statistics object: {trigram: rows}} for the statistics of this
-- migration, the trigrams in at least `rows_at_least` rows (their share
-- times the table's estimated rows). Security definer: the statistics are
-- visible to the tables' owner only.
create function search_heavy_trigrams(rows_at_least real)
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
create function search_affordable(grams text[], heavy jsonb, budget real) returns boolean
language sql immutable parallel safe
return exists (select from unnest(grams) as g where not coalesce(heavy ? g, false))
   and (select coalesce(sum((heavy ->> g)::real), 0) from unnest(grams) as g) <= budget;

-- fold_case() (migration 0004), cheaper on ASCII text: lower() under the C
-- collation changes A to Z alone, as fold_case()'s ASCII branch does with
-- translate(), about ten times faster (translate(): 10 us a value). For the
-- walk, which folds every row it examines; the indexes' rechecks must use
-- fold_case(), their expression. tests/test_lookups.py checks the two
-- agree. Not strict, so that the planner inlines it as it does fold_case()
-- (a strict function inlines only into a strict expression, and a CASE is
-- not); called instead, every statement would set it up again (0.5 ms).
create function search_fold(v text) returns text
language sql immutable parallel safe
return case
    when octet_length(v) = char_length(v) then lower(v collate "C")
    else fold_case(v)
end;

-- Up to lim students after `after` whose name or email contains q, in id
-- order, then, if the walk ran and rows remain, the walk's end (a row with
-- only its id). heavy: search_heavy_trigrams()'s answer; budget: the rows
-- the heavy trigrams' lists may hold; walk: the rows a walk examines.
create function search_student_page(
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
    ended bigint;
begin
    if not search_narrows(q) then
        raise exception 'q % has no trigram the indexes can look up', q
            using errcode = 'invalid_parameter_value', column = 'q';
    end if;
    if search_affordable(grams, heavy -> 'students_name_trigrams', budget)
       and search_affordable(grams, heavy -> 'students_email_trigrams', budget) then
        -- 1. The index: a constant limit, as in 0011. Planned (once per
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
    select count(*), max(w.id) into walked, ended
    from (select s.id from students s where s.id > after order by s.id limit walk) w;
    if walked = walk then
        return query select ended, null::text, null::text, null::timestamptz;
    end if;
end;
$$;

-- The same for courses, by code or title; the walk's end is a row with only
-- its id.
create function search_course_page(
    after bigint, q text, lim integer, walk integer, heavy jsonb, budget real
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
              and c.id + 0 > after
            limit 2001
        );
        perform set_config('enable_indexscan', 'on', true), set_config('enable_seqscan', 'on', true);
        if cardinality(found) <= 2000 then
            return query select * from unnest(found) order by 1 limit lim;
            return;
        end if;
    end if;
    return query
        select w.* from (select * from courses c where c.id > after order by c.id limit walk) w
        where search_fold(w.code) like pattern or search_fold(w.title) like pattern
        order by w.id limit lim;
    select count(*), max(w.id) into walked, ended.id
    from (select c.id from courses c where c.id > after order by c.id limit walk) w;
    if walked = walk then
        return next ended;
    end if;
end;
$$;

analyze students, courses;
