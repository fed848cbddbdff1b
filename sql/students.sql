-- Students. Every statement is prepared once per connection by asyncpg.

-- name: get_student
-- One student by id.
select id, name, email, created_at
from students
where id = $1;

-- name: list_students
-- A page of students after the cursor id ($1), in id order; $2 is the page size.
select id, name, email, created_at
from students
where id > $1
order by id
limit $2;

-- name: create_student
-- A new student; a taken email raises a unique violation on students_email_key.
-- $3 is the actor its event records (see the header of sql/events.sql).
insert into students (name, email)
select $1, $2
from (select set_config('enrollment.actor', $3, true)) as actor
returning id, name, email, created_at;

-- name: update_student
-- Change the given fields; a null parameter keeps the stored value. $4: the actor.
update students
set name = coalesce($2, name),
    email = coalesce($3, email)
from (select set_config('enrollment.actor', $4, true)) as actor
where id = $1
returning id, name, email, created_at;

-- name: delete_student
-- Delete a student; their enrollments and waitlist entries go with them (ON
-- DELETE CASCADE), their seats to the heads of the queues. $2: the actor.
delete from students
using (select set_config('enrollment.actor', $2, true)) as actor
where id = $1
returning id;
