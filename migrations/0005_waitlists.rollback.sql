-- Drops the waitlists and the kept seat counts, and restores 0003's capacity
-- triggers, which count enrollments instead. Everyone waiting is dropped
-- from the queue (the table goes); enrollments stay as they are.

set local lock_timeout = '5s';

drop trigger course_waitlist_no_truncate on course_waitlist;
drop trigger student_courses_no_truncate on student_courses;
drop trigger student_courses_keys_kept on student_courses;
drop trigger courses_counts_start_at_zero on courses;
drop trigger courses_counts_kept on courses;
drop trigger courses_promote_on_capacity on courses;
drop trigger student_courses_counted_delete on student_courses;
drop trigger student_courses_counted_insert on student_courses;
drop table course_waitlist;
drop function refuse_counted_change();
drop function courses_capacity_raised();
drop function course_waitlist_count_delete();
drop function course_waitlist_count_insert();
drop function course_waitlist_check_insert();
drop function student_courses_count_delete();
drop function student_courses_count_insert();
drop function promote_waitlist(bigint);

alter table courses
    drop constraint courses_waitlisted_within_capacity,
    drop constraint courses_enrolled_within_capacity,
    drop column waitlisted,
    drop column enrolled,
    drop column waitlist_capacity;

-- As in 0003_course_capacity, word for word.
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
