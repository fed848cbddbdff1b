-- Enrollments: the student_courses relation, seen from either side.

-- name: enroll
-- Enroll student $1 in course $2 in one statement. The insert either creates
-- the row or, on conflict, leaves the existing one; the select returns the
-- course with the enrollment's time either way. A missing student or course
-- surfaces as a foreign key violation naming the column, a full course as a
-- check violation from the student_courses_capacity trigger.
-- enrolled_at is null only when the existing row was committed by a
-- concurrent request after this statement's snapshot: read it again then.
with inserted as (
    insert into student_courses (student_id, course_id)
    values ($1, $2)
    on conflict (student_id, course_id) do nothing
    returning enrolled_at
)
select c.id, c.code, c.title, c.capacity, c.created_at,
       coalesce(i.enrolled_at, sc.enrolled_at) as enrolled_at,
       i.enrolled_at is not null as created
from courses c
left join inserted i on true
left join student_courses sc on sc.student_id = $1 and sc.course_id = c.id
where c.id = $2;

-- name: get_enrollment
-- One enrollment of student $1, with its course.
select c.id, c.code, c.title, c.capacity, c.created_at, sc.enrolled_at
from student_courses sc
join courses c on c.id = sc.course_id
where sc.student_id = $1 and sc.course_id = $2;

-- name: list_student_courses
-- A page of the courses of student $1 after course id $2, in course id order,
-- $3 rows at most. One row with a null id when the student has no courses
-- (past the cursor); no row at all when the student does not exist.
select c.id, c.code, c.title, c.capacity, c.created_at, e.enrolled_at
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
-- Unenroll student $1 from course $2.
delete from student_courses
where student_id = $1 and course_id = $2
returning course_id;
