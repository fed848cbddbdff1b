-- Enrollments: the student_courses relation, seen from either side.

-- name: enroll
-- Enroll student $1 in course $2 in one statement, or put them on its
-- waitlist when it is full and $3 asks for it. The course row is locked
-- first (FOR NO KEY UPDATE returns its latest version), so its counts are
-- current and no other change to its seats or queue can commit before this
-- one. Then at most one insert happens: a seat while one is free (ON CONFLICT
-- leaves an existing enrollment), or a place at the end of the queue while
-- the waitlist has room. The triggers count the row and refuse what the
-- counts or the other table forbid (a seat: student_courses_counted_inserted,
-- migrations 0010 and 0012; a place in the queue: course_waitlist_counted_insert
-- and course_waitlist_checked, migration 0005); the conditions here only
-- spare them an error in the common cases.
-- One row always: id is null when the course does not exist, student_exists
-- is false when the student does not. enrolled_at and waitlisted_at are null
-- when an existing row was committed by a concurrent request after this
-- statement's snapshot: read them again then. $4 is the actor the events
-- record (see the header of sql/events.sql).
with course as (
    select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
           capacity is null or enrolled < capacity as has_seat,
           set_config('enrollment.actor', $4, true) as actor
    from courses
    where id = $2
    for no key update
),
seated as (
    insert into student_courses (student_id, course_id)
    select $1, id from course where has_seat
    on conflict (student_id, course_id) do nothing
    returning enrolled_at
),
queued as (
    insert into course_waitlist (student_id, course_id)
    select $1, id from course
    where $3::boolean and not has_seat and waitlisted < waitlist_capacity
      and not exists (select 1 from student_courses where student_id = $1 and course_id = $2)
    on conflict (student_id, course_id) do nothing
    returning waitlisted_at
)
select c.id, c.code, c.title, c.capacity, c.waitlist_capacity,
       c.enrolled + (s.enrolled_at is not null)::integer as enrolled,
       c.waitlisted + (q.waitlisted_at is not null)::integer as waitlisted,
       c.created_at,
       coalesce(s.enrolled_at, e.enrolled_at) as enrolled_at,
       coalesce(q.waitlisted_at, w.waitlisted_at) as waitlisted_at,
       case
           when q.waitlisted_at is not null then c.waitlisted + 1
           when w.seq is not null then (
               select count(*) from course_waitlist a where a.course_id = c.id and a.seq <= w.seq
           )
       end as position,
       s.enrolled_at is not null as created,
       q.waitlisted_at is not null as queued,
       exists (select 1 from students where id = $1) as student_exists
from (values (true)) as one (row)
left join course c on true
left join seated s on true
left join queued q on true
left join student_courses e on e.student_id = $1 and e.course_id = c.id
left join course_waitlist w on w.student_id = $1 and w.course_id = c.id;

-- name: get_enrollment
-- One enrollment of student $1, with its course.
select c.id, c.code, c.title, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
       c.created_at, sc.enrolled_at
from student_courses sc
join courses c on c.id = sc.course_id
where sc.student_id = $1 and sc.course_id = $2;

-- name: list_student_courses
-- A page of the courses of student $1 after course id $2, in course id order,
-- $3 rows at most. One row with a null id when the student has no courses
-- (past the cursor); no row at all when the student does not exist.
select c.id, c.code, c.title, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
       c.created_at, e.enrolled_at
from students s
left join lateral (
    select sc.course_id, sc.enrolled_at
    from student_courses sc
    where sc.student_id = s.id and sc.course_id > $2
    order by sc.course_id
    limit $3
) e on true
left join courses c on c.id = e.course_id
where s.id = $1
order by e.course_id;

-- name: list_course_students
-- A page of the students of course $1 after student id $2, in student id
-- order, $3 rows at most; same shape rules as list_student_courses.
select s.id, s.name, s.email, s.created_at, e.enrolled_at
from courses c
left join lateral (
    select sc.student_id, sc.enrolled_at
    from student_courses sc
    where sc.course_id = c.id and sc.student_id > $2
    order by sc.student_id
    limit $3
) e on true
left join students s on s.id = e.student_id
where c.id = $1
order by e.student_id;

-- name: delete_enrollment
-- Unenroll student $1 from course $2; the freed seat goes to the head of the
-- course's queue in the same transaction (student_courses_counted_delete).
-- $3: the actor.
delete from student_courses
using (select set_config('enrollment.actor', $3, true)) as actor
where student_id = $1 and course_id = $2
returning course_id;
