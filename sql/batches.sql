-- Batches: many changes in one statement, each a call of batch_enroll(),
-- batch_students() or batch_courses() (sql/functions/batches.sql), or
-- batch_terms() (sql/functions/terms.sql).
-- Each statement applies its items in order and returns one row per item,
-- in item order. The actor (last) is set by the function for the events.

-- name: enroll
-- Enroll or drop: $1 drop?, $2 student id or $3 email, $4 course id or $6
-- code in term $5, $7 waitlist, $8 the rules overridden (comma-separated),
-- one element per item; $9 the actor.
select item, outcome, about, student_id, course_id, code, title, capacity, waitlist_capacity,
       enrolled, waitlisted, created_at, term_id, credits, meetings, prerequisites, enrolled_at,
       waitlisted_at, queue_position
from batch_enroll($1::boolean[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],
                  $6::text[], $7::boolean[], $8::text[], $9)
order by item;

-- name: students
-- Create or rename by email: $1 names, $2 emails; $3 the actor.
select item, outcome, id, name, email, created_at
from batch_students($1::text[], $2::text[], $3)
order by item;

-- name: courses
-- Create or update by code in a term: $1 codes, $2 titles, $3 whether $4's
-- capacity applies, $5 waitlist capacities, $6 terms (null: none), $7
-- credits, $8 meetings, $9 prerequisites (JSON arrays); a null keeps the
-- stored value (the default on a create). $10 the actor.
select item, outcome, id, code, title, capacity, waitlist_capacity, enrolled, waitlisted,
       created_at, term_id, credits, meetings, prerequisites
from batch_courses($1::text[], $2::text[], $3::boolean[], $4::integer[], $5::integer[],
                   $6::bigint[], $7::numeric[], $8::jsonb[], $9::jsonb[], $10)
order by item;

-- name: terms
-- Create or update by code, one element per item: its code, title, dates,
-- and for each other field whether it applies (:set_...) and its value;
-- :actor the actor.
select item, outcome, out_of_order, id, code, title, starts_on, ends_on, registration_opens_at,
       registration_closes_at, drop_deadline, max_credits, created_at
from batch_terms(:codes::text[], :titles::text[], :starts_on::date[], :ends_on::date[],
                 :set_registration_opens_at::boolean[], :registration_opens_at::timestamptz[],
                 :set_registration_closes_at::boolean[], :registration_closes_at::timestamptz[],
                 :set_drop_deadline::boolean[], :drop_deadline::timestamptz[],
                 :set_max_credits::boolean[], :max_credits::numeric[], :actor)
order by item;
