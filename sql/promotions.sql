-- Changes that may let a waiting student take a seat at once: a hold
-- removed, a completion added, a time ticket or credit limit set. The
-- triggers of sql/functions/registration.sql promote the student in the
-- change's own transaction, so the feed locks of the courses the student
-- waits in must be held before the change takes its first row lock (the
-- order every writer takes them in: lock_courses(), sql/functions/events.sql).
-- This statement takes them, alone, before the change's statement
-- (service/repositories/promotions.py says why alone).

-- name: lock_student_waits
-- The actor $2 of the transaction's events, and the feed locks of the
-- courses student $1 waits in during term $3 (null: in every term).
select set_config('enrollment.actor', $2, true), lock_student_waits($1::bigint, $3::bigint);
