-- Holds: while a student has one they cannot enroll or join a waitlist. A
-- hold's reason is personal data: the events of its triggers
-- (sql/functions/registration.sql) name it by id only.

-- name: get_hold
-- Hold $2 of student $1.
select id, reason, created_at
from student_holds
where student_id = $1 and id = $2;

-- name: list_student_holds
-- A page of student $1's holds after id $2, in id order, $3 rows at most. One
-- row with a null id when the student has none (past the cursor); no row at
-- all when the student does not exist.
select h.id, h.reason, h.created_at
from students s
left join lateral (
    select id, reason, created_at
    from student_holds
    where student_id = s.id and id > $2
    order by id
    limit $3
) h on true
where s.id = $1
order by h.id;

-- name: create_hold
-- A hold on student $1 for reason $2; no row when the student does not exist
-- (a student deleted meanwhile: a foreign key violation). $3: the actor.
insert into student_holds (student_id, reason)
select s.id, $2
from (select set_config('enrollment.actor', $3, true)) as actor, students s
where s.id = $1
returning id, reason, created_at;

-- name: delete_hold
-- Remove hold $2 of student $1: after lock_student_waits (sql/promotions.sql),
-- in its transaction, which set the actor.
delete from student_holds
where student_id = $1 and id = $2
returning id;
