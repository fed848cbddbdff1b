-- Completions: the course codes a student has passed, which prerequisites
-- ask for. One per code and student, regardless of letter case (the unique
-- index student_completions_code_key of migration 0016).

-- name: get_completion
-- Completion $2 of student $1.
select id, code, completed_at
from student_completions
where student_id = $1 and id = $2;

-- name: list_student_completions
-- A page of student $1's completions after id $2, in id order, $3 rows at
-- most. One row with a null id when the student has none (past the cursor);
-- no row at all when the student does not exist.
select c.id, c.code, c.completed_at
from students s
left join lateral (
    select id, code, completed_at
    from student_completions
    where student_id = s.id and id > $2
    order by id
    limit $3
) c on true
where s.id = $1
order by c.id;

-- name: create_completion
-- Student $1 has passed code $2, at $3 (null: now). No row when the student
-- does not exist; a code they already have raises a unique violation on
-- student_completions_code_key. After lock_student_waits
-- (sql/promotions.sql), in its transaction, which set the actor.
insert into student_completions (student_id, code, completed_at)
select s.id, $2, coalesce($3::timestamptz, now())
from students s
where s.id = $1
returning id, code, completed_at;

-- name: delete_completion
-- Remove completion $2 of student $1. $3: the actor. Nobody can take a seat
-- because of it: no feed lock to take first.
delete from student_completions
using (select set_config('enrollment.actor', $3, true)) as actor
where student_id = $1 and id = $2
returning id;
