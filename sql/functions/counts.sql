-- The kept counts of every course (courses.enrolled, courses.waitlisted),
-- updated by the triggers below in the transaction of the rows they count,
-- and the guards that refuse, for any writer (a script in psql included),
-- what would break the rules of enrolling. They decide no outcome:
-- enroll_run(), drop_enrollment() and promote_waitlist() (enrollments.sql) do.
--
-- Each counter update locks the course row until commit, so the changes to
-- one course's seats and queue serialize on that lock, and the check
-- constraints on the counters (courses_enrolled_within_capacity,
-- courses_waitlisted_within_capacity, of migration 0005) refuse one seat or
-- one place too many, exactly, whatever the concurrency. A count kept, not
-- counted: the 10,000th enrollment of a course costs what the first did.
--
-- AFTER triggers of one table and event fire row triggers first, each kind
-- in name order: the foreign keys' checks ("RI_ConstraintTrigger_...") come
-- first, so a missing student or course is reported as such, not as a full
-- course; on a delete from student_courses, student_courses_audit
-- (events.sql) records the drop before student_courses_counted_delete
-- promotes ("audit" sorts before "counted").

-- The guards' function: refuses the change with the message tg_argv[0], as
-- a check violation of the constraint named tg_argv[1]. Its triggers are
-- below (the *_kept and *_no_truncate ones) and in idempotency.sql.
create or replace function refuse_counted_change() returns trigger
language plpgsql as $$
begin
    raise exception '%', tg_argv[0]
        using errcode = 'check_violation', constraint = tg_argv[1];
end;
$$;

-- student_courses_counted_inserted: once per statement that inserts
-- enrollments, however many rows (its transition table `inserted`): their
-- enrollment.created events, numbered as record_event() numbers them, in
-- insertion order; one update per course, which locks the course row
-- (courses_enrolled_within_capacity refuses a seat too many, for the
-- statement as a whole); then the check that none of the students is
-- waiting, made under that lock (a place joined concurrently locks the row
-- first: seen here, or its guard sees the enrollment). Per statement, not
-- per row: every update of one row in a transaction adds a version that
-- later ones walk, so n enrollments into a course counted one by one cost
-- O(n^2). A statement trigger fires after the row triggers, so the foreign
-- keys name a missing student or course first. While promote_waitlist()
-- inserts (enrollment.promoting 'on') it records no event: promote_waitlist()
-- has recorded them.
create or replace function student_courses_inserted() returns trigger
language plpgsql as $$
declare
    added integer;
    first_course bigint;
    last_course bigint;
    course record;
    waiting record;
    base bigint;
    term bigint;
    points numeric;
    actor text := current_setting('enrollment.actor', true);
begin
    select count(*), min(i.course_id), max(i.course_id) into added, first_course, last_course
    from inserted i;
    if added = 0 then
        return null;  -- an ON CONFLICT that found the enrollment
    end if;

    -- A promotion's events are recorded by promote_waitlist(), in its own order.
    if current_setting('enrollment.promoting', true) is distinct from 'on' then
        base := reserve_events(
            added, array(select distinct i.course_id from inserted i)
        );
        insert into events (id, type, actor, student_id, course_id, data)
        select base + i.k,
               'enrollment.created',
               case when actor is null then 'sql:' || session_user else nullif(actor, '') end,
               i.student_id,
               i.course_id,
               -- From inside a trigger: a promotion. promote_waitlist(), the
               -- one such insert, skips this branch, so it is 'request' here.
               jsonb_build_object(
                   'via', case when pg_trigger_depth() > 1 then 'waitlist' else 'request' end
               ) || overrides_data(i.overrides)
        from (select row_number() over () as k, student_id, course_id, overrides from inserted) i
        order by i.k;
    end if;

    -- The check constraint refuses a seat too many. Several courses are
    -- updated in course id order, so two such statements lock them in one order.
    -- A course of a term: its students' kept credits in the term
    -- (student_terms.credits, read by registration_blocker()).
    if first_course = last_course then
        update courses set enrolled = enrolled + added where id = first_course
        returning term_id, credits into term, points;
        if term is not null then
            insert into student_terms as st (student_id, term_id, credits)
            select i.student_id, term, points from inserted i order by i.student_id
            on conflict (student_id, term_id) do update set credits = st.credits + excluded.credits;
        end if;
    else
        for course in
            select i.course_id, count(*)::integer as added
            from inserted i
            group by i.course_id
            order by i.course_id
        loop
            update courses set enrolled = enrolled + course.added where id = course.course_id
            returning term_id, credits into term, points;
            if term is not null then
                insert into student_terms as st (student_id, term_id, credits)
                select i.student_id, term, points from inserted i
                where i.course_id = course.course_id order by i.student_id
                on conflict (student_id, term_id) do update set credits = st.credits + excluded.credits;
            end if;
        end loop;
    end if;
    select i.student_id, i.course_id into waiting
    from inserted i
    join course_waitlist w on w.student_id = i.student_id and w.course_id = i.course_id
    limit 1;
    if found then
        raise exception 'student % is waiting for course %', waiting.student_id, waiting.course_id
            using errcode = 'check_violation', constraint = 'student_courses_not_waiting';
    end if;
    return null;
end;
$$;

-- student_courses_counted_delete, per enrollment deleted (a drop, a
-- cascade from its student or course, an operator's delete): the seat is
-- counted free and the head of the queue takes it at once, in the same
-- transaction (promote_waitlist(), under the course lock this update took).
-- Per row, so that each drop is recorded (student_courses_audit, which sorts
-- first) before the promotion its seat gives rise to.
create or replace function student_courses_count_delete() returns trigger
language plpgsql as $$
declare
    term bigint;
    points numeric;
begin
    update courses set enrolled = enrolled - 1 where id = old.course_id
    returning term_id, credits into term, points;
    if found then
        perform promote_waitlist(old.course_id);
        -- A course of a term: the student's credits freed (kept in
        -- student_terms), and their meetings.
        if term is not null then
            update student_terms set credits = credits - points
            where student_id = old.student_id and term_id = term;
        end if;
    else
        -- The course is being deleted: courses_registration_deleted
        -- (registration.sql) has freed the credits and noted its term.
        term := course_deleted_term(old.course_id);
    end if;
    -- Their other queues in the term may promote them now (registration.sql).
    if term is not null and exists (select 1 from students where id = old.student_id) then
        perform promote_student(old.student_id, term);
    end if;
    return null;
end;
$$;

-- course_waitlist_checked, before each place joined, under the course
-- row's lock (the lock every change to its seats and queue takes): no place
-- while a seat is free (course_waitlist_course_full), none for a student
-- enrolled in the course (course_waitlist_not_enrolled).
create or replace function course_waitlist_check_insert() returns trigger
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

-- course_waitlist_counted_insert: each place joined counted
-- (courses_waitlisted_within_capacity refuses one too many).
create or replace function course_waitlist_count_insert() returns trigger
language plpgsql as $$
begin
    update courses set waitlisted = waitlisted + 1 where id = new.course_id;
    return null;
end;
$$;

-- course_waitlist_counted_deleted: the departures from the queues (a
-- promotion, a leave, a cascade) counted once per statement and course, from
-- the statement's deleted rows (its transition table `deleted`), so that a
-- promotion of n students updates its course once, not n times. In course id
-- order, so that two such statements lock the courses they share in one
-- order and never deadlock.
create or replace function course_waitlist_deleted() returns trigger
language plpgsql as $$
declare
    course record;
begin
    for course in
        select d.course_id, count(*)::integer as gone
        from deleted d
        group by d.course_id
        order by d.course_id
    loop
        update courses set waitlisted = waitlisted - course.gone where id = course.course_id;
    end loop;
    return null;
end;
$$;

-- courses_promote_on_capacity: a capacity raised, or set to null (no limit),
-- gives its new seats to the head of the queue (promote_waitlist(), under the
-- lock the update holds on the course row).
create or replace function courses_capacity_raised() returns trigger
language plpgsql as $$
begin
    perform promote_waitlist(new.id);
    return null;
end;
$$;

-- The guards: the counters change only from inside the triggers
-- (pg_trigger_depth() 0 is a client's own statement) and start at zero; a
-- counted row never moves to another student or course (it would need two
-- counts); a counted table is never truncated (TRUNCATE fires no delete
-- trigger: no count, no promotion).
create or replace trigger courses_counts_kept
    before update of enrolled, waitlisted on courses
    for each row
    when (pg_trigger_depth() = 0)
    execute function refuse_counted_change(
        'enrolled and waitlisted are kept by the database: change the enrollments or the waitlist',
        'courses_counts_kept');

create or replace trigger courses_counts_start_at_zero
    before insert on courses
    for each row
    when (new.enrolled <> 0 or new.waitlisted <> 0)
    execute function refuse_counted_change(
        'a new course has no enrollments and no one waiting', 'courses_counts_kept');

create or replace trigger student_courses_keys_kept
    before update of student_id, course_id on student_courses
    for each row
    when (new.student_id <> old.student_id or new.course_id <> old.course_id)
    execute function refuse_counted_change(
        'an enrollment does not move: delete it and insert another', 'student_courses_keys_kept');

create or replace trigger course_waitlist_keys_kept
    before update of student_id, course_id on course_waitlist
    for each row
    when (new.student_id <> old.student_id or new.course_id <> old.course_id)
    execute function refuse_counted_change(
        'a waitlist entry does not move: delete it and insert another',
        'course_waitlist_keys_kept');

create or replace trigger student_courses_no_truncate
    before truncate on student_courses
    for each statement execute function refuse_counted_change(
        'truncate skips the triggers that keep seat counts and promote: delete instead',
        'student_courses_no_truncate');

create or replace trigger course_waitlist_no_truncate
    before truncate on course_waitlist
    for each statement execute function refuse_counted_change(
        'truncate skips the triggers that keep the waitlist counts: delete instead',
        'course_waitlist_no_truncate');

-- The counters' triggers (their functions above say what each does).
create or replace trigger student_courses_counted_inserted
    after insert on student_courses
    referencing new table as inserted
    for each statement execute function student_courses_inserted();

create or replace trigger student_courses_counted_delete
    after delete on student_courses
    for each row execute function student_courses_count_delete();

create or replace trigger course_waitlist_checked
    before insert on course_waitlist
    for each row execute function course_waitlist_check_insert();

create or replace trigger course_waitlist_counted_insert
    after insert on course_waitlist
    for each row execute function course_waitlist_count_insert();

create or replace trigger course_waitlist_counted_deleted
    after delete on course_waitlist
    referencing old table as deleted
    for each statement execute function course_waitlist_deleted();

create or replace trigger courses_promote_on_capacity
    after update of capacity on courses
    for each row
    when (new.capacity is null and old.capacity is not null or new.capacity > old.capacity)
    execute function courses_capacity_raised();
