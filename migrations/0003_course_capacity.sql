-- Enforce course capacity inside the database, safely under concurrency.
-- depends: 0002_student_courses
--
-- A check inside the INSERT statement alone is not enough: in READ COMMITTED
-- a statement counts enrollments with the snapshot it started with, so two
-- concurrent enrollments can both see one free seat. These triggers lock the
-- course row first and then count with a fresh snapshot (each statement of a
-- volatile PL/pgSQL function takes one), so enrollments into one course
-- serialize and the count is always current.

set local lock_timeout = '5s';

create function student_courses_check_capacity() returns trigger
language plpgsql as $$
declare
    seats integer;
begin
    -- Serializes enrollments into this course and waits for a concurrent
    -- capacity change or delete. A missing course is left to the foreign key.
    select capacity into seats from courses where id = new.course_id for no key update;
    if not found or seats is null then
        return new;
    end if;
    -- A missing student is the foreign key's to report, not "full".
    if not exists (select 1 from students where id = new.student_id) then
        return new;
    end if;
    -- A repeated enrollment is not a new seat: let ON CONFLICT handle it.
    if exists (
        select 1 from student_courses
        where student_id = new.student_id and course_id = new.course_id
    ) then
        return new;
    end if;
    if (select count(*) from student_courses where course_id = new.course_id) >= seats then
        raise exception 'course % is full', new.course_id
            using errcode = 'check_violation', constraint = 'student_courses_capacity';
    end if;
    return new;
end;
$$;

create trigger student_courses_capacity
    before insert on student_courses
    for each row execute function student_courses_check_capacity();

create function courses_check_capacity() returns trigger
language plpgsql as $$
begin
    -- The row is locked by this UPDATE, so no enrollment into the course can
    -- commit while we count.
    if new.capacity is not null
       and (select count(*) from student_courses where course_id = new.id) > new.capacity then
        raise exception 'course % has more enrollments than %', new.id, new.capacity
            using errcode = 'check_violation', constraint = 'courses_capacity_enrollments';
    end if;
    return new;
end;
$$;

create trigger courses_capacity
    before update of capacity on courses
    for each row execute function courses_check_capacity();
