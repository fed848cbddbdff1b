-- A student's settings in a term: a time ticket (registration_opens_at) and
-- a credit limit replacing the term's (max_credits), null when not set; and
-- the credits they are enrolled in there, kept by the triggers of
-- student_courses (sql/functions/registration.sql). A row exists once a
-- setting was set or the student enrolled in a course of the term; without
-- one, the settings are null and the credits 0.

-- name: get_student_term
-- Student $1's settings and credits in term $2. Always one row: a null
-- student_id or term_id says which of them does not exist.
select s.id as student_id, t.id as term_id, st.registration_opens_at, st.max_credits,
       coalesce(st.credits, 0) as credits
from (select $1::bigint as student_id, $2::bigint as term_id) k
left join students s on s.id = k.student_id
left join terms t on t.id = k.term_id
left join student_terms st on st.student_id = k.student_id and st.term_id = k.term_id;

-- name: put_student_term
-- Set both of student $1's settings in term $2: time ticket $3 and credit
-- limit $4 (null: none). No row when the student or the term does not exist
-- (one deleted meanwhile: a foreign key violation). After lock_student_waits
-- (sql/promotions.sql), in its transaction, which set the actor.
insert into student_terms (student_id, term_id, registration_opens_at, max_credits)
select s.id, t.id, $3, $4
from students s, terms t
where s.id = $1 and t.id = $2
on conflict (student_id, term_id) do update
set registration_opens_at = excluded.registration_opens_at,
    max_credits = excluded.max_credits
returning student_id;
