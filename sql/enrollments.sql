-- Enrollments: the student_courses relation, seen from either side.

-- name: enroll
-- Enroll student :student_id in course :course_id, or put them on its
-- waitlist when it is full and :waitlist asks for it: enroll_run() decides
-- (sql/functions/enrollments.sql), as for a batch's items. :overrides: the
-- rules a registrar overrode, comma-separated (null: none); :sourced_id the
-- new enrollment's (null: a new UUID). :actor is the actor the events record
-- (see the header of sql/events.sql). One row: the outcome (and about what,
-- for a rule of registration), the course as of after it, the enrollment's
-- or the waitlist entry's time, the position in the queue, the enrollment's
-- sourced_id.
select outcome, about, student_id, course_id, code, title, capacity, waitlist_capacity,
       enrolled, waitlisted, created_at, term_id, credits, meetings, prerequisites,
       enrolled_at, waitlisted_at, queue_position, sourced_id
from enroll_run(:course_id, null, null, array[:student_id::bigint], array[:waitlist::boolean],
                array[:overrides::text], array[:sourced_id::text], :actor);

-- name: get_enrollment
-- One enrollment of student $1, with its course's fields.
select c.id, c.code, c.title, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
       c.created_at, c.term_id, c.credits, c.meetings, c.prerequisites, sc.sourced_id,
       sc.enrolled_at
from student_courses sc
join courses c on c.id = sc.course_id
where sc.student_id = $1 and sc.course_id = $2;

-- name: list_student_courses
-- A page of the courses of student $1 after course id $2, in course id order,
-- $3 rows at most, each with the enrollment's sourced_id. One row with a null id when the student has no courses
-- (past the cursor); no row at all when the student does not exist.
select c.id, c.code, c.title, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
       c.created_at, c.term_id, c.credits, c.meetings, c.prerequisites, e.sourced_id,
       e.enrolled_at
from students s
left join lateral (
    select sc.course_id, sc.sourced_id, sc.enrolled_at
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
-- order, $3 rows at most; same shape rules as list_student_courses. The
-- sourced_id is the enrollment's.
select s.id, s.name, s.email, s.created_at, e.sourced_id, e.enrolled_at
from courses c
left join lateral (
    select sc.student_id, sc.sourced_id, sc.enrolled_at
    from student_courses sc
    where sc.course_id = c.id and sc.student_id > $2
    order by sc.student_id
    limit $3
) e on true
left join students s on s.id = e.student_id
where c.id = $1
order by e.student_id;

-- name: delete_enrollment
-- Unenroll student $1 from course $2: drop_enrollment() (sql/functions/enrollments.sql),
-- as for a batch's drops; the freed seat goes to the head of the course's
-- queue in the same transaction. $3: the rules a registrar overrode
-- (drop-deadline-passed, or null); $4: the actor. One row: the outcome.
select outcome, null::text[] as about, student_id, course_id
from drop_enrollment($1, null, $2, null, null, $3, $4);
