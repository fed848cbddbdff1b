-- Courses. enrolled and waitlisted are kept by triggers
-- (sql/functions/counts.sql). Every statement returns a course's columns in
-- the order of the fields of models.Course.

-- name: get_course
-- One course by id, and the version of its row: xmin, the value of its ETag.
-- The seat triggers write enrolled and waitlisted into the row, so every
-- enrollment, drop and promotion makes a new version (service/conditional.py).
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
       term_id, credits, meetings, prerequisites, sourced_id, xmin::text
from courses
where id = $1;

-- name: list_courses
-- A page of courses after the cursor id ($1), in id order; $2 is the page size.
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
       term_id, credits, meetings, prerequisites, sourced_id
from courses
where id > $1
order by id
limit $2;

-- name: list_courses_by_code
-- ?code=: the courses with that code in any letter case, one at most per
-- term and one without (the unique index courses_code_key of migration 0016
-- finds them by its first column), after the cursor id ($1); $3 is the page
-- size. With ?q= too, only those whose code or title also contains the text
-- $4 (null: no ?q=), as search_pattern() (sql/functions/search.sql) has it;
-- with ?term_id=, only the one of term $5 (null: no ?term_id=).
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
       term_id, credits, meetings, prerequisites, sourced_id
from courses
where fold_case(code) = fold_case($2) and id > $1
  and ($4::text is null or fold_case(code) like search_pattern($4) or fold_case(title) like search_pattern($4))
  and ($5::bigint is null or term_id = $5)
order by id
limit $3;

-- name: list_courses_by_term
-- ?term_id=: a page of the courses of term $2 after the cursor id ($1), in
-- id order; $3 is the page size. The index courses_term_id of migration
-- 0016 serves it.
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
       term_id, credits, meetings, prerequisites, sourced_id
from courses
where term_id = $2 and id > $1
order by id
limit $3;

-- name: list_courses_by_sourced_id
-- ?sourced_id=: the course with that sourced_id (the unique index
-- courses_sourced_id_key of migration 0019), if after the cursor id
-- (:after); with ?code= (:code), ?q= (:q) and ?term_id= (:term_id) too
-- (null: not given), only if they also hold, as in list_courses_by_code.
select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
       term_id, credits, meetings, prerequisites, sourced_id
from courses
where sourced_id = :sourced_id and id > :after
  and (:code::text is null or fold_case(code) = fold_case(:code))
  and (:q::text is null or fold_case(code) like search_pattern(:q)
       or fold_case(title) like search_pattern(:q))
  and (:term_id::bigint is null or term_id = :term_id);

-- name: create_course
-- A new course, with :sourced_id or a new UUID (sourced_id_or_new(),
-- sql/functions/sourced_ids.sql); :meetings is JSON text, checked by the
-- service. A code taken in the term raises a unique violation on
-- courses_code_key, a taken sourced_id on courses_sourced_id_key; a term
-- that does not exist, a foreign key violation on courses_term_id_fkey.
-- :actor is the actor its event records (see the header of
-- sql/functions/events.sql).
insert into courses (code, title, capacity, waitlist_capacity, term_id, credits, meetings,
                     prerequisites, sourced_id)
select :code, :title, :capacity, :waitlist_capacity, :term_id, :credits, :meetings::jsonb,
       :prerequisites, sourced_id_or_new(:sourced_id)
from (select set_config('enrollment.actor', :actor, true)) as actor
returning courses.id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
    term_id, credits, meetings, prerequisites, sourced_id;

-- name: update_course
-- Change the given fields. Capacity may be set to null (no limit), so $4 says
-- whether $5 is to be applied; a null $6 keeps waitlist_capacity. Lowering
-- capacity below the enrollments, or waitlist_capacity below the students
-- waiting, violates courses_enrolled_within_capacity or
-- courses_waitlisted_within_capacity. Raising capacity promotes from the
-- waitlist in an AFTER trigger, which RETURNING does not see: read the
-- course again (get_course) in the same transaction. $7: the versions
-- If-Match accepts (null: any); the row changes only if its xmin is one of
-- them, re-checked on the newest version when a concurrent change (an
-- enrollment too) commits first, so the compare and the write are one step.
-- Returns the new version. $8: the actor.
-- $9 says whether $10 is to be applied to term_id (null: no term); a null
-- $11 (credits), $12 (meetings, JSON text) or $13 (prerequisites) keeps it.
-- A code taken in the new term violates courses_code_key; a term that does
-- not exist, courses_term_id_fkey; another term for a course with students
-- enrolled or waiting, courses_term_id_not_empty (courses_term_kept,
-- sql/functions/registration.sql).
-- The feed locks first: those of the course alone (lock_courses(),
-- sql/functions/events.sql), or, when credits, meetings or prerequisites
-- are given, whose change may promote students waiting here or elsewhere,
-- those lock_course_rules() (sql/functions/registration.sql) takes.
update courses
set code = coalesce($2, code),
    title = coalesce($3, title),
    capacity = case when $4::boolean then $5::integer else capacity end,
    waitlist_capacity = coalesce($6, waitlist_capacity),
    term_id = case when $9::boolean then $10::bigint else term_id end,
    credits = coalesce($11, credits),
    meetings = coalesce($12::jsonb, meetings),
    prerequisites = coalesce($13, prerequisites)
from (
    select set_config('enrollment.actor', $8, true),
           case when $11::numeric is null and $12::jsonb is null and $13::text[] is null
                then lock_courses(array[$1::bigint])
                else lock_course_rules($1::bigint) end
) as actor
where id = $1 and ($7::text[] is null or courses.xmin::text = any($7::text[]))
returning courses.id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
    term_id, credits, meetings, prerequisites, sourced_id, courses.xmin::text;

-- name: delete_course
-- Delete a course; its enrollments and waitlist go with it (ON DELETE CASCADE).
-- $2: the versions If-Match accepts (null: any), compared as in update_course.
-- $3: the actor. The course's feed lock first, with those of the courses of
-- its term its students wait for: freed of its meetings and credits, they
-- may be promoted there (lock_course_rules(), sql/functions/registration.sql).
delete from courses
using (select set_config('enrollment.actor', $3, true), lock_course_rules($1::bigint)) as actor
where id = $1 and ($2::text[] is null or courses.xmin::text = any($2::text[]))
returning id;
