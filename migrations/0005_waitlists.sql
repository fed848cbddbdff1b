-- Waitlists, and seat counts kept in the course row rather than counted.
-- depends: 0004_unicode_letter_case
--
-- courses gains waitlist_capacity (how many may wait, 0 = no waitlist) and
-- two counters, enrolled and waitlisted, kept by triggers on student_courses
-- and course_waitlist in the same transaction as the row they count. Each
-- trigger updates the course row, which locks it until commit: changes to
-- one course's seats and queue serialize on that lock, and the check
-- constraints on the counters refuse one enrollment (or one waiting student)
-- too many, exactly, whatever the concurrency. The 10,000th enrollment of a
-- course costs what the first did: 0003's triggers counted the course's rows
-- on every insert, and are dropped.
--
-- Whenever a seat frees (an enrollment deleted, by a request, a cascade or an
-- operator's SQL; capacity raised or set to null), promote_waitlist() enrolls
-- the head of the queue in the same transaction, in queue order, until the
-- seats are taken or the queue is empty. Queue order is course_waitlist.seq,
-- from an identity sequence, assigned while the course row is locked when
-- the insert comes through the API (the enroll statement locks it first).
--
-- The invariants, and what holds each:
-- 1. enrolled <= capacity, waitlisted <= waitlist_capacity: check constraints
--    on the counters, updated under the course row lock;
-- 2. never both enrolled in and waiting for one course: a check on either
--    insert, made while the course row is locked;
-- 3. no seat free while someone waits: joining the queue is refused while a
--    seat is free, and every change that frees a seat promotes;
-- 4. promotion takes the head of the queue (lowest seq) first; positions are
--    counted, not stored, so they are 1..n without gaps;
-- 5. the counters equal the rows: kept by the row triggers; changing them
--    directly, a key column of a counted row, or truncating a counted table
--    is refused.
--
-- Existing data: the counters are filled from the rows while student_courses
-- is locked against writes (SHARE: reads go on), so no enrollment commits
-- between the count and the triggers that keep it from then on. No existing
-- value changes.

set local lock_timeout = '5s';

lock table student_courses in share mode;

alter table courses
    add column waitlist_capacity integer not null default 0
        constraint courses_waitlist_capacity_check check (waitlist_capacity between 0 and 100000),
    add column enrolled integer not null default 0,
    add column waitlisted integer not null default 0;

update courses c
set enrolled = n.enrolled
from (select course_id, count(*)::integer as enrolled from student_courses group by course_id) n
where c.id = n.course_id;

alter table courses
    add constraint courses_enrolled_within_capacity
        check (enrolled >= 0 and (capacity is null or enrolled <= capacity)),
    add constraint courses_waitlisted_within_capacity
        check (waitlisted >= 0 and waitlisted <= waitlist_capacity);

drop trigger student_courses_capacity on student_courses;
drop function student_courses_check_capacity();
drop trigger courses_capacity on courses;
drop function courses_check_capacity();

create table course_waitlist (
    student_id bigint not null references students (id) on delete cascade,
    course_id bigint not null references courses (id) on delete cascade,
    waitlisted_at timestamptz not null default now(),
    -- Queue order within a course: lower is nearer the head.
    seq bigint generated always as identity,
    -- Serves a student's waitlist in course id order, and "is this student waiting".
    constraint course_waitlist_pkey primary key (student_id, course_id)
);

-- Serves a course's queue in order, positions (a count of the entries ahead)
-- and the ON DELETE CASCADE from courses.
create unique index course_waitlist_queue on course_waitlist (course_id, seq);

-- Enrolls the head of course c's queue while a seat is free. The caller
-- holds the course row's lock (it has just updated the row), so nothing else
-- changes this course's seats or queue until it commits. A student deleted
-- by the statement that freed the seat is passed over: the cascade removes
-- their entry.
create function promote_waitlist(c bigint) returns void
language plpgsql as $$
declare
    seats integer;
    taken integer;
    head bigint;
begin
    loop
        select capacity, enrolled into seats, taken from courses where id = c for no key update;
        exit when not found or (seats is not null and taken >= seats);
        select w.student_id into head
        from course_waitlist w
        join students s on s.id = w.student_id
        where w.course_id = c
        order by w.seq
        limit 1;
        exit when not found;
        delete from course_waitlist where student_id = head and course_id = c;
        insert into student_courses (student_id, course_id) values (head, c);
    end loop;
end;
$$;

create function student_courses_count_insert() returns trigger
language plpgsql as $$
begin
    -- Locks the course row; the check constraint refuses a seat too many.
    update courses set enrolled = enrolled + 1 where id = new.course_id;
    if exists (
        select 1 from course_waitlist
        where student_id = new.student_id and course_id = new.course_id
    ) then
        raise exception 'student % is waiting for course %', new.student_id, new.course_id
            using errcode = 'check_violation', constraint = 'student_courses_not_waiting';
    end if;
    return null;
end;
$$;

create function student_courses_count_delete() returns trigger
language plpgsql as $$
begin
    update courses set enrolled = enrolled - 1 where id = old.course_id;
    perform promote_waitlist(old.course_id);
    return null;
end;
$$;

-- AFTER triggers fire in name order: the foreign key checks
-- ("RI_ConstraintTrigger_...") come first, so a missing student or course is
-- reported as such, not as a full course.
create trigger student_courses_counted_insert
    after insert on student_courses
    for each row execute function student_courses_count_insert();

create trigger student_courses_counted_delete
    after delete on student_courses
    for each row execute function student_courses_count_delete();

create function course_waitlist_check_insert() returns trigger
language plpgsql as $$
declare
    course record;
begin
    -- Serializes with every other change to this course's seats and queue.
    select capacity, enrolled into course from courses where id = new.course_id for no key update;
    if not found then
        return new;  -- the foreign key reports it
    end if;
    if course.capacity is null or course.enrolled < course.capacity then
        raise exception 'course % has a free seat: enroll instead of waiting', new.course_id
            using errcode = 'check_violation', constraint = 'course_waitlist_course_full';
    end if;
    if exists (
        select 1 from student_courses
        where student_id = new.student_id and course_id = new.course_id
    ) then
        raise exception 'student % is enrolled in course %', new.student_id, new.course_id
            using errcode = 'check_violation', constraint = 'course_waitlist_not_enrolled';
    end if;
    return new;
end;
$$;

create function course_waitlist_count_insert() returns trigger
language plpgsql as $$
begin
    update courses set waitlisted = waitlisted + 1 where id = new.course_id;
    return null;
end;
$$;

create function course_waitlist_count_delete() returns trigger
language plpgsql as $$
begin
    update courses set waitlisted = waitlisted - 1 where id = old.course_id;
    return null;
end;
$$;

create trigger course_waitlist_checked
    before insert on course_waitlist
    for each row execute function course_waitlist_check_insert();

create trigger course_waitlist_counted_insert
    after insert on course_waitlist
    for each row execute function course_waitlist_count_insert();

create trigger course_waitlist_counted_delete
    after delete on course_waitlist
    for each row execute function course_waitlist_count_delete();

create function courses_capacity_raised() returns trigger
language plpgsql as $$
begin
    perform promote_waitlist(new.id);
    return null;
end;
$$;

create trigger courses_promote_on_capacity
    after update of capacity on courses
    for each row
    when (new.capacity is null and old.capacity is not null or new.capacity > old.capacity)
    execute function courses_capacity_raised();

-- What keeps the counters equal to the rows: nothing else may change them.
create function refuse_counted_change() returns trigger
language plpgsql as $$
begin
    raise exception '%', tg_argv[0]
        using errcode = 'check_violation', constraint = tg_argv[1];
end;
$$;

create trigger courses_counts_kept
    before update of enrolled, waitlisted on courses
    for each row
    when (pg_trigger_depth() = 0)
    execute function refuse_counted_change(
        'enrolled and waitlisted are kept by the database: change the enrollments or the waitlist',
        'courses_counts_kept');

create trigger courses_counts_start_at_zero
    before insert on courses
    for each row
    when (new.enrolled <> 0 or new.waitlisted <> 0)
    execute function refuse_counted_change(
        'a new course has no enrollments and no one waiting', 'courses_counts_kept');

create trigger student_courses_keys_kept
    before update of student_id, course_id on student_courses
    for each row
    when (new.student_id <> old.student_id or new.course_id <> old.course_id)
    execute function refuse_counted_change(
        'an enrollment does not move: delete it and insert another', 'student_courses_keys_kept');

create trigger course_waitlist_keys_kept
    before update of student_id, course_id on course_waitlist
    for each row
    when (new.student_id <> old.student_id or new.course_id <> old.course_id)
    execute function refuse_counted_change(
        'a waitlist entry does not move: delete it and insert another',
        'course_waitlist_keys_kept');

create trigger student_courses_no_truncate
    before truncate on student_courses
    for each statement execute function refuse_counted_change(
        'truncate skips the triggers that keep seat counts and promote: delete instead',
        'student_courses_no_truncate');

create trigger course_waitlist_no_truncate
    before truncate on course_waitlist
    for each statement execute function refuse_counted_change(
        'truncate skips the triggers that keep the waitlist counts: delete instead',
        'course_waitlist_no_truncate');
