-- The many-to-many relation between students and courses.
-- depends: 0001_students_and_courses
--
-- Creates one new table; existing students and courses are only referenced.
-- Adding the foreign keys takes a SHARE ROW EXCLUSIVE lock on students and
-- courses (writes wait, reads go on); lock_timeout bounds that wait so a busy
-- database makes the migration fail fast instead of queueing every writer
-- behind it.

set local lock_timeout = '5s';

create table student_courses (
    student_id bigint not null references students (id) on delete cascade,
    course_id bigint not null references courses (id) on delete cascade,
    enrolled_at timestamptz not null default now(),
    -- The primary key is the unique constraint, and its index serves
    -- "courses of a student" ordered by course id.
    constraint student_courses_pkey primary key (student_id, course_id)
);

-- Serves "students of a course" ordered by student id, the course count in
-- capacity checks, and the ON DELETE CASCADE from courses.
create index student_courses_course_id_student_id_idx on student_courses (course_id, student_id);
