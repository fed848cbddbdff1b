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
insert into students (name, email)
values ($1, $2)
returning id, name, email, created_at;

-- name: update_student
-- Change the given fields; a null parameter keeps the stored value.
update students
set name = coalesce($2, name),
    email = coalesce($3, email)
where id = $1
returning id, name, email, created_at;

-- name: delete_student
-- Delete a student; their enrollments go with them (ON DELETE CASCADE).
delete from students
where id = $1
returning id;
