-- Events: every change to students, courses, enrollments and waitlists,
-- recorded by triggers in the same transaction as the change.
-- depends: 0005_waitlists
--
-- Whatever makes the change (a request, an ON DELETE CASCADE, a promotion,
-- an operator's SQL), the row triggers below record it; a change that rolls
-- back takes its events with it. Events carry ids, field names and reasons,
-- never a name or an email, so deleting a student leaves no personal data
-- behind. No foreign keys: an event outlives what it is about.
--
-- The feed must give every committed event exactly once, in id order, to a
-- reader who follows its cursor. An id from a sequence is handed out at
-- insert, not at commit: a reader could pass id 101 before the transaction
-- holding id 100 commits, and never see 100. So an event's id is made of its
-- transaction's id and its number within the transaction,
--     id = xid << 20 | n,
-- and the feed serves only events of transactions older than the oldest one
-- still running (pg_snapshot_xmin of the reader's snapshot). Every such
-- transaction has ended, so no event can ever appear below what was served;
-- any later event belongs to a transaction at or past that horizon, whose
-- ids are all above it. The horizon waits for long transactions: a
-- transaction left open (anywhere in the cluster) holds the feed back, never
-- forward.
--
-- The actor is the setting enrollment.actor, which the service sets (local
-- to the transaction) in every statement that writes: the token's name, or
-- '' without tokens (null in the event). A change made without it (an
-- operator's SQL) is recorded with actor 'sql:<role>'.

set local lock_timeout = '5s';

create table events (
    id bigint primary key,
    type text not null,
    at timestamptz not null default now(),
    actor text,
    student_id bigint,
    course_id bigint,
    data jsonb not null default '{}'
);

-- The feed filtered by student or by course, in id order.
create index events_student_id on events (student_id, id) where student_id is not null;
create index events_course_id on events (course_id, id) where course_id is not null;

-- Where retention has deleted up to (EVENTS_RETENTION_DAYS): a cursor below
-- it may have missed events, and is refused (410).
create table events_retention (
    single boolean primary key default true check (single),
    purged_through bigint not null default 0
);
insert into events_retention default values;

create function record_event(kind text, student bigint, course bigint, details jsonb)
returns void
language plpgsql as $$
declare
    n integer := coalesce(nullif(current_setting('enrollment.event_n', true), ''), '0')::integer + 1;
    actor text := current_setting('enrollment.actor', true);
begin
    if n >= 1048576 then
        raise exception 'a transaction records at most 1048575 events: split it'
            using errcode = 'program_limit_exceeded';
    end if;
    perform set_config('enrollment.event_n', n::text, true);
    insert into events (id, type, actor, student_id, course_id, data)
    values (
        (pg_current_xact_id()::text::bigint << 20) | n,
        kind,
        case when actor is null then 'sql:' || session_user else nullif(actor, '') end,
        student,
        course,
        details
    );
end;
$$;

-- The fields of `new` that differ from `old`, among `watched`.
create function changed_fields(old_row jsonb, new_row jsonb, watched text[]) returns jsonb
language sql immutable as $$
    select jsonb_build_object('fields', coalesce(jsonb_agg(f order by ord), '[]'::jsonb))
    from unnest(watched) with ordinality as w(f, ord)
    where old_row -> f is distinct from new_row -> f
$$;

create function students_record() returns trigger
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

create function courses_record() returns trigger
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
            to_jsonb(old), to_jsonb(new), array['code', 'title', 'capacity', 'waitlist_capacity']
        );
        if details -> 'fields' <> '[]'::jsonb then
            perform record_event('course.updated', null, new.id, details);
        end if;
    end if;
    return null;
end;
$$;

-- Why a row of student_courses or course_waitlist went: its student or its
-- course deleted (the cascade runs after the parent row is gone, so the
-- parent is no longer there), else `otherwise`.
create function departure(student bigint, course bigint, otherwise text) returns text
language sql stable as $$
    select case
        when not exists (select 1 from students where id = student) then 'student_deleted'
        when not exists (select 1 from courses where id = course) then 'course_deleted'
        else otherwise
    end
$$;

create function student_courses_record() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        -- Inserted by a trigger (promote_waitlist): a promotion.
        perform record_event(
            'enrollment.created', new.student_id, new.course_id,
            jsonb_build_object('via', case when pg_trigger_depth() > 1 then 'waitlist' else 'request' end)
        );
    else
        perform record_event(
            'enrollment.deleted', old.student_id, old.course_id,
            jsonb_build_object('reason', departure(old.student_id, old.course_id, 'dropped'))
        );
    end if;
    return null;
end;
$$;

create function course_waitlist_record() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        perform record_event('waitlist.joined', new.student_id, new.course_id, '{}');
    else
        -- Deleted by a trigger (promote_waitlist), the parents still there: promoted.
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
create trigger students_audit
    after insert or update of name, email on students
    for each row execute function students_record();

create trigger students_audit_delete
    before delete on students
    for each row execute function students_record();

-- Not fired by the seat counters' updates, which name none of these columns.
create trigger courses_audit
    after insert or update of code, title, capacity, waitlist_capacity on courses
    for each row execute function courses_record();

create trigger courses_audit_delete
    before delete on courses
    for each row execute function courses_record();

create trigger student_courses_audit
    after insert or delete on student_courses
    for each row execute function student_courses_record();

create trigger course_waitlist_audit
    after insert or delete on course_waitlist
    for each row execute function course_waitlist_record();
