-- Students. Every statement is prepared once per connection by asyncpg.

-- name: get_student
-- One student by id, and the version of its row: xmin, the value of its ETag
-- (why xmin: service/conditional.py).
select id, name, email, created_at, sourced_id, xmin::text
from students
where id = $1;

-- name: list_students
-- A page of students after the cursor id ($1), in id order; $2 is the page size.
select id, name, email, created_at, sourced_id
from students
where id > $1
order by id
limit $2;

-- name: list_students_by_email
-- ?email=: the student with that email in any letter case (the unique index
-- students_email_key of migration 0004), if after the cursor id ($1); $3 is
-- the page size. With ?q= too, only if its name or email also contains the
-- text $4 (null: no ?q=), as search_pattern() (sql/functions/search.sql)
-- has it.
select id, name, email, created_at, sourced_id
from students
where fold_case(email) = fold_case($2) and id > $1
  and ($4::text is null or fold_case(name) like search_pattern($4) or fold_case(email) like search_pattern($4))
order by id
limit $3;

-- name: list_students_by_sourced_id
-- ?sourced_id=: the student with that sourced_id (the unique index
-- students_sourced_id_key of migration 0019), if after the cursor id
-- (:after); with ?email= (:email) and ?q= (:q) too (null: not given), only
-- if they also hold, as in list_students_by_email.
select id, name, email, created_at, sourced_id
from students
where sourced_id = :sourced_id and id > :after
  and (:email::text is null or fold_case(email) = fold_case(:email))
  and (:q::text is null or fold_case(name) like search_pattern(:q)
       or fold_case(email) like search_pattern(:q));

-- name: create_student
-- A new student, with :sourced_id or a new UUID (sourced_id_or_new(),
-- sql/functions/sourced_ids.sql); a taken email raises a unique violation
-- on students_email_key, a taken sourced_id on students_sourced_id_key.
-- :actor is the actor its event records (see the header of sql/events.sql).
insert into students (name, email, sourced_id)
select :name, :email, sourced_id_or_new(:sourced_id)
from (select set_config('enrollment.actor', :actor, true)) as actor
returning id, name, email, created_at, sourced_id;

-- name: update_student
-- Change the given fields; a null parameter keeps the stored value. $4: the
-- versions If-Match accepts (null: any); the row changes only if its xmin is
-- one of them, re-checked on the newest version when a concurrent change
-- commits first, so the compare and the write are one step. Returns the new
-- version. $5: the actor.
update students
set name = coalesce($2, name),
    email = coalesce($3, email)
from (select set_config('enrollment.actor', $5, true)) as actor
where id = $1 and ($4::text[] is null or students.xmin::text = any($4::text[]))
returning id, name, email, created_at, sourced_id, students.xmin::text;

-- name: delete_student
-- Delete a student; their enrollments and waitlist entries go with them (ON
-- DELETE CASCADE), their seats to the heads of the queues. $2: the versions
-- If-Match accepts (null: any), compared as in update_student. $3: the actor.
-- The feed locks of the student's courses first (lock_courses(),
-- sql/functions/events.sql); a course joined after they were read makes the
-- cascade's event refuse the whole (serialization_failure): run it again.
delete from students
using (
    select set_config('enrollment.actor', $3, true),
           lock_courses(array(
               select course_id from student_courses where student_id = $1
               union
               select course_id from course_waitlist where student_id = $1
           ))
) as actor
where id = $1 and ($2::text[] is null or students.xmin::text = any($2::text[]))
returning id;
