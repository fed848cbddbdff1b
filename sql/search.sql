-- ?q=: the bounded search of sql/functions/search.sql, and its rule of what
-- text the indexes can narrow (search_narrows()).

-- name: narrows
-- Whether the trigram indexes can narrow a search for the text $1: the
-- search functions refuse one they cannot; with ?email= or ?code= too the
-- lookup is by that unique index, and the service asks first, so that a ?q=
-- is refused alike whatever it comes with.
select search_narrows($1);

-- name: students
-- Up to $3 students after the cursor id ($1) whose name or email contains
-- the text $2 in any letter case, in id order; then, if the page came from
-- a walk of $4 rows with rows left after it, a row with only the walk's
-- last id (name null). $5: heavy_trigrams' answer; $6: the rows the heavy
-- trigrams' lists may hold for the index to be used. One call of
-- search_student_page().
select id, name, email, created_at, sourced_id
from search_student_page($1, $2, $3, $4, $5::jsonb, $6);

-- name: courses
-- The same for courses, by code or title (code null: the walk's end), of
-- term $7 only (null: any): search_course_page().
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
       term_id, credits, meetings, prerequisites, sourced_id
from search_course_page($1, $2, $3, $4, $5::jsonb, $6, $7::bigint);

-- name: heavy_trigrams
-- {statistics object: {trigram: rows}}: the trigrams ANALYZE last found in
-- at least $1 rows of a column (the extended statistics of migration 0013,
-- read by search_heavy_trigrams()), as the text the search statements take
-- back.
select search_heavy_trigrams($1)::text;
