-- Waitlists: the course_waitlist relation, seen from either side. A position
-- is counted (1 + the entries ahead in the course's queue), never stored, so
-- positions are 1..n without gaps; course_waitlist_queue serves the count.

-- name: get_entry
-- Student $1's place in the queue of course $2, with the course.
select c.id, c.code, c.title, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
       c.created_at, c.term_id, c.credits, c.meetings, c.prerequisites, w.waitlisted_at,
       (select count(*) from course_waitlist a where a.course_id = w.course_id and a.seq <= w.seq)
           as position
from course_waitlist w
join courses c on c.id = w.course_id
where w.student_id = $1 and w.course_id = $2;

-- name: list_student_waitlist
-- A page of the queues student $1 is in, after course id $2, in course id
-- order, $3 rows at most. One row with a null id when the student waits for
-- nothing (past the cursor); no row at all when the student does not exist.
select c.id, c.code, c.title, c.capacity, c.waitlist_capacity, c.enrolled, c.waitlisted,
       c.created_at, c.term_id, c.credits, c.meetings, c.prerequisites, e.waitlisted_at,
       (select count(*) from course_waitlist a where a.course_id = e.course_id and a.seq <= e.seq)
           as position
from students s
left join lateral (
    select w.course_id, w.waitlisted_at, w.seq
    from course_waitlist w
    where w.student_id = s.id and w.course_id > $2
    order by w.course_id
    limit $3
) e on true
left join courses c on c.id = e.course_id
where s.id = $1
order by e.course_id;

-- name: list_course_waitlist
-- A page of course $1's queue after queue key $2 (seq), head first, $3 rows
-- at most, each with its position and its seq (the next page's key). One
-- row with a null id when no one waits (past the cursor); no row at all when
-- the course does not exist.
select s.id, s.name, s.email, s.created_at, q.waitlisted_at,
       (select count(*) from course_waitlist a where a.course_id = c.id and a.seq <= $2)
           + row_number() over (order by q.seq) as position,
       q.seq
from courses c
left join lateral (
    select w.student_id, w.waitlisted_at, w.seq
    from course_waitlist w
    where w.course_id = c.id and w.seq > $2
    order by w.seq
    limit $3
) q on true
left join students s on s.id = q.student_id
where c.id = $1
order by q.seq;

-- name: leave
-- Student $1 leaves the queue of course $2; everyone behind moves up. $3: the actor.
-- The course's feed lock first (lock_courses(), sql/functions/events.sql).
delete from course_waitlist
using (select set_config('enrollment.actor', $3, true), lock_courses(array[$2::bigint])) as actor
where student_id = $1 and course_id = $2
returning course_id;
