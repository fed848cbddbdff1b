-- Batches: many changes in one statement, each a call of batch_enroll(),
-- batch_students() or batch_courses() (sql/functions/batches.sql), or
-- batch_terms() (sql/functions/terms.sql).
-- Each statement applies its items in order and returns one row per item,
-- in item order. The actor (last) is set by the function for the events.

-- name: enroll
-- Enroll or drop, one element per item: :drops (drop?), the student by
-- :student_ids, :student_emails or :student_sourced_ids, the course by
-- :course_ids, :course_codes in :course_terms or :course_sourced_ids,
-- :waitlists, :overrides (the rules overridden, comma-separated),
-- :sourced_ids (the enrollment's); :actor the actor.
select item, outcome, about, student_id, course_id, code, title, capacity, waitlist_capacity,
       enrolled, waitlisted, created_at, term_id, credits, meetings, prerequisites, enrolled_at,
       waitlisted_at, queue_position, sourced_id
from batch_enroll(:drops::boolean[], :student_ids::bigint[], :student_emails::text[],
                  :student_sourced_ids::text[], :course_ids::bigint[], :course_terms::bigint[],
                  :course_codes::text[], :course_sourced_ids::text[], :waitlists::boolean[],
                  :overrides::text[], :sourced_ids::text[], :actor)
order by item;

-- name: students
-- Create or update, by email or by sourced_id: :names, :emails,
-- :sourced_ids (null: by email); :actor the actor.
select item, outcome, id, name, email, created_at, sourced_id
from batch_students(:names::text[], :emails::text[], :sourced_ids::text[], :actor)
order by item;

-- name: courses
-- Create or update, by code in a term or by sourced_id: :codes, :titles,
-- whether :capacities applies (:set_capacities), :waitlist_capacities,
-- :term_ids (null: none), :credits, :meetings, :prerequisites (JSON
-- arrays), :sourced_ids (null: by code); a null keeps the stored value
-- (the default on a create). :actor the actor.
select item, outcome, id, code, title, capacity, waitlist_capacity, enrolled, waitlisted,
       created_at, term_id, credits, meetings, prerequisites, sourced_id
from batch_courses(:codes::text[], :titles::text[], :set_capacities::boolean[],
                   :capacities::integer[], :waitlist_capacities::integer[], :term_ids::bigint[],
                   :credits::numeric[], :meetings::jsonb[], :prerequisites::jsonb[],
                   :sourced_ids::text[], :actor)
order by item;

-- name: terms
-- Create or update, by code or by sourced_id, one element per item: its
-- code, title, dates, for each other field whether it applies (:set_...)
-- and its value, and :sourced_ids (null: by code); :actor the actor.
select item, outcome, out_of_order, id, code, title, starts_on, ends_on, registration_opens_at,
       registration_closes_at, drop_deadline, max_credits, created_at, sourced_id
from batch_terms(:codes::text[], :titles::text[], :starts_on::date[], :ends_on::date[],
                 :set_registration_opens_at::boolean[], :registration_opens_at::timestamptz[],
                 :set_registration_closes_at::boolean[], :registration_closes_at::timestamptz[],
                 :set_drop_deadline::boolean[], :drop_deadline::timestamptz[],
                 :set_max_credits::boolean[], :max_credits::numeric[], :sourced_ids::text[],
                 :actor)
order by item;
