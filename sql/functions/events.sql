-- The history: record_event() and the triggers that record every change to
-- students, courses, enrollments and waitlists in the transaction of the
-- change, whatever makes it (a request, a cascade, a promotion, an operator's
-- SQL); a change that rolls back takes its events with it. Events carry ids,
-- field names and reasons, never a name or an email. Two more writers record
-- many events in one insert: student_courses_inserted() (counts.sql) a
-- statement's new enrollments, promote_waitlist() (enrollments.sql) a
-- promotion's pairs. All three number them with reserve_events().
--
-- An event's id is its transaction's id and its number in the transaction,
-- xid << 20 | n (n kept in the transaction-local setting enrollment.event_n,
-- 1,048,575 at most). An id from a sequence is taken at insert, not at
-- commit: a reader could pass 101 before the transaction holding 100 commits,
-- and never see it. The feed (sql/events.sql) serves only the events of
-- transactions older than the oldest one still running, so it gives every
-- committed event exactly once, in id order.
--
-- Causal order. Every change to a course's seats, queue or settings waits
-- for the course's lock, so one that depends on another (a promotion of a
-- student whose join committed first, a join after the seat it could not
-- have taken) commits after it. For the feed to show them in that order, the
-- later transaction's id must be the larger: PostgreSQL hands a transaction
-- its id at its first write or row lock, and one that got it before waiting
-- for the course (its delete of an enrollment, its lock of the course row)
-- may hold a smaller id than the transaction it waited for. So a
-- transaction takes the locks of every course it will change first, before
-- anything gives it an id: lock_courses(), an advisory lock per course,
-- which gives none. Its id then comes after the commit of whatever held
-- those courses before it. reserve_events() refuses, in a transaction that
-- locks courses, an event about a course it did not lock so. A transaction
-- that locks none (an operator's SQL; an instance of the release before
-- this one during a rolling upgrade) is let through, its events ordered by
-- its id as before.
-- Logical decoding would order by commit too, at the price of a slot to
-- keep, a decoder to run and the feed's ids no longer being the rows'.
--
-- The actor is the transaction-local setting enrollment.actor, which every
-- statement of the service that writes sets (the functions it calls, from
-- their `actor` argument): the token's name, or '' without tokens (null in
-- the event). Without it (an operator's SQL) the actor is 'sql:<role>'.

-- lock_courses: the feed locks of courses `ids` (nulls skipped), in id order
-- (two transactions never wait for each other in a circle), each held to the
-- end of the transaction; their ids are kept in the transaction-local setting
-- enrollment.courses (",1,5,"). A course locked already is skipped. Locking
-- one more course after the transaction has its id is refused: its events
-- could come before those of the transaction it waits for
-- (serialization_failure: the transaction runs again, and locks the course
-- first this time); unless `created`: courses this transaction created,
-- which no other can have changed.
create or replace function lock_courses(ids bigint[], created boolean default false)
returns void
language plpgsql as $$
declare
    held text := coalesce(nullif(current_setting('enrollment.courses', true), ''), ',');
    course bigint;
begin
    if cardinality(ids) > 1 then  -- one course (most calls) needs no sort
        ids := array(
            select distinct u.id from unnest(ids) as u (id) where u.id is not null order by u.id
        );
    end if;
    foreach course in array coalesce(ids, '{}') loop
        continue when course is null or strpos(held, ',' || course || ',') > 0;
        if not created and pg_current_xact_id_if_assigned() is not null then
            raise exception 'course % is locked after this transaction changed something', course
                using errcode = 'serialization_failure',
                      hint = 'lock every course a transaction changes first, in one lock_courses()';
        end if;
        -- The two-key form: apart from the one-key locks of idempotency keys.
        perform pg_advisory_xact_lock((course >> 32)::integer,
                                      (course & 4294967295)::bit(32)::integer);
        held := held || course || ',';
    end loop;
    perform set_config('enrollment.courses', held, true);
end;
$$;

-- reserve_events: numbers for `count` events of this transaction about
-- `courses`; returns the id of the first less one (event k of the `count`
-- has the id base + k). In a transaction that locks courses (every change
-- the service makes does, with lock_courses()), refuses an event about a
-- course it did not lock first (serialization_failure: run the transaction
-- again; a student deleted while they joined another course meets it).
create or replace function reserve_events(count integer, courses bigint[]) returns bigint
language plpgsql as $$
declare
    n integer := coalesce(nullif(current_setting('enrollment.event_n', true), ''), '0')::integer;
    held text := coalesce(current_setting('enrollment.courses', true), '');
    course bigint;
begin
    if n + count >= 1048576 then
        raise exception 'a transaction records at most 1048575 events: split it'
            using errcode = 'program_limit_exceeded';
    end if;
    if held <> '' then
        foreach course in array coalesce(courses, '{}') loop
            if course is not null and strpos(held, ',' || course || ',') = 0 then
                raise exception 'course % changed by a transaction that did not lock it first', course
                    using errcode = 'serialization_failure',
                          hint = 'lock_courses() before the first change';
            end if;
        end loop;
    end if;
    perform set_config('enrollment.event_n', (n + count)::text, true);
    return (pg_current_xact_id()::text::bigint << 20) | n;
end;
$$;

-- One event of type `kind` about a student and/or a course, numbered next in
-- the transaction.
create or replace function record_event(kind text, student bigint, course bigint, details jsonb)
returns void
language plpgsql as $$
declare
    actor text := current_setting('enrollment.actor', true);
    base bigint := reserve_events(
        1, case when course is not null and kind <> 'course.created' then array[course] end
    );
begin
    insert into events (id, type, actor, student_id, course_id, data)
    values (
        base + 1,
        kind,
        case when actor is null then 'sql:' || session_user else nullif(actor, '') end,
        student,
        course,
        details
    );
end;
$$;

-- The fields of `new` that differ from `old`, among `watched`.
create or replace function changed_fields(old_row jsonb, new_row jsonb, watched text[]) returns jsonb
language sql immutable as $$
    select jsonb_build_object('fields', coalesce(jsonb_agg(f order by ord), '[]'::jsonb))
    from unnest(watched) with ordinality as w(f, ord)
    where old_row -> f is distinct from new_row -> f
$$;

-- Why a row of student_courses or course_waitlist went: its student or its
-- course deleted (the cascade runs after the parent row is gone, so the
-- parent is no longer there), else `otherwise`.
create or replace function departure(student bigint, course bigint, otherwise text) returns text
language sql stable as $$
    select case
        when not exists (select 1 from students where id = student) then 'student_deleted'
        when not exists (select 1 from courses where id = course) then 'course_deleted'
        else otherwise
    end
$$;

-- students_audit and students_audit_delete: a student created, deleted, or
-- changed in name or email (the fields that changed, never their values).
create or replace function students_record() returns trigger
language plpgsql as $$
declare
    details jsonb;
begin
    if tg_op = 'INSERT' then
        perform record_event('student.created', new.id, null, '{}');
    elsif tg_op = 'DELETE' then
        perform record_event('student.deleted', old.id, null, '{}');
        return old;  -- BEFORE DELETE: go on with the delete
    else
        details := changed_fields(to_jsonb(old), to_jsonb(new), array['name', 'email']);
        if details -> 'fields' <> '[]'::jsonb then
            perform record_event('student.updated', new.id, null, details);
        end if;
    end if;
    return null;
end;
$$;

-- courses_audit and courses_audit_delete: a course created, deleted, or
-- changed in code, title, capacity, waitlist_capacity, term_id, credits,
-- meetings or prerequisites (which ones).
create or replace function courses_record() returns trigger
language plpgsql as $$
declare
    details jsonb;
begin
    if tg_op = 'INSERT' then
        perform record_event('course.created', null, new.id, '{}');
    elsif tg_op = 'DELETE' then
        perform record_event('course.deleted', null, old.id, '{}');
        return old;  -- BEFORE DELETE: go on with the delete
    else
        details := changed_fields(
            to_jsonb(old), to_jsonb(new),
            array['code', 'title', 'capacity', 'waitlist_capacity', 'term_id', 'credits',
                  'meetings', 'prerequisites']
        );
        if details -> 'fields' <> '[]'::jsonb then
            perform record_event('course.updated', null, new.id, details);
        end if;
    end if;
    return null;
end;
$$;

-- student_courses_audit: an enrollment deleted, and why (dropped,
-- student_deleted, course_deleted). The trigger fires on deletes only: new
-- enrollments are recorded by student_courses_inserted() (counts.sql), so the
-- INSERT branch is not reached.
create or replace function student_courses_record() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        -- Not reached (see above). From inside a trigger: a promotion.
        perform record_event(
            'enrollment.created', new.student_id, new.course_id,
            jsonb_build_object('via', case when pg_trigger_depth() > 1 then 'waitlist' else 'request' end)
        );
    else
        -- A registrar's overrides of the drop (drop_enrollment()).
        perform record_event(
            'enrollment.deleted', old.student_id, old.course_id,
            jsonb_build_object('reason', departure(old.student_id, old.course_id, 'dropped'))
                || overrides_data(string_to_array(
                       nullif(current_setting('enrollment.overrides', true), ''), ','))
        );
    end if;
    return null;
end;
$$;

-- course_waitlist_audit: a place joined (waitlist.joined) or left
-- (waitlist.left, and why: left, student_deleted, course_deleted). A
-- promotion's departures are recorded by promote_waitlist(), with this
-- trigger silent meanwhile.
create or replace function course_waitlist_record() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        perform record_event('waitlist.joined', new.student_id, new.course_id,
                             overrides_data(new.overrides));
    else
        -- Deleted from inside a trigger, both parents still there: a
        -- promotion. promote_waitlist() records its own with this trigger
        -- silent, so here it is 'left' or a parent deleted.
        perform record_event(
            'waitlist.left', old.student_id, old.course_id,
            jsonb_build_object('reason', departure(
                old.student_id, old.course_id,
                case when pg_trigger_depth() > 1 then 'promoted' else 'left' end
            ))
        );
    end if;
    return null;
end;
$$;

-- Trigger names decide the order of triggers on one table and event: a
-- student's or a course's deletion is recorded BEFORE the row goes, so it
-- comes ahead of the events of its cascade (the foreign keys' triggers run
-- first among the AFTER ones); a dropped enrollment is recorded ("audit" sorts
-- before "counted") ahead of the promotion its seat gives rise to.
create or replace trigger students_audit
    after insert or update of name, email on students
    for each row execute function students_record();

create or replace trigger students_audit_delete
    before delete on students
    for each row execute function students_record();

-- Not fired by the seat counters' updates, which name none of these columns.
create or replace trigger courses_audit
    after insert or update of code, title, capacity, waitlist_capacity, term_id, credits,
        meetings, prerequisites on courses
    for each row execute function courses_record();

create or replace trigger courses_audit_delete
    before delete on courses
    for each row execute function courses_record();

-- Deletes only (inserts: student_courses_counted_inserted, counts.sql).
-- "audit" sorts before "counted": a dropped enrollment is recorded ahead of
-- the promotion its seat gives rise to (student_courses_counted_delete).
create or replace trigger student_courses_audit
    after delete on student_courses
    for each row execute function student_courses_record();

-- Silent while promote_waitlist() moves the head of a queue
-- (enrollment.promoting 'on'): it records those events itself. The WHEN is
-- checked as each row changes, so nothing is queued meanwhile.
create or replace trigger course_waitlist_audit
    after insert or delete on course_waitlist
    for each row
    when (current_setting('enrollment.promoting', true) is distinct from 'on')
    execute function course_waitlist_record();
