"""The invariants of Waitlists (spec, 1, 2, 3 and 5) as SQL: each query returns what breaks it.

Shared by the tests (tests/test_waitlists.py) and the failover drill
(bench/failover.py), which check them after concurrent changes; invariant 4
(positions 1..n in queue order) is checked through the API, beside them.
"""

WAITLIST_INVARIANTS = {
    # 1. no more enrolled than seats, no more waiting than places
    "over capacity": """
        select id from courses
        where (capacity is not null and enrolled > capacity) or waitlisted > waitlist_capacity
    """,
    # 2. never both enrolled in and waiting for one course
    "enrolled and waiting": """
        select w.student_id from course_waitlist w
        join student_courses e using (student_id, course_id)
    """,
    # 3. no seat free while someone waits
    "a free seat and a queue": """
        select c.id from courses c
        where exists (select 1 from course_waitlist w where w.course_id = c.id)
          and (c.capacity is null or c.enrolled < c.capacity)
    """,
    # 5. the counts equal the rows
    "counts off": """
        select c.id from courses c
        where c.enrolled <> (select count(*) from student_courses e where e.course_id = c.id)
           or c.waitlisted <> (select count(*) from course_waitlist w where w.course_id = c.id)
    """,
}
