create or replace function record_event(kind text, student bigint, course bigint, details jsonb)
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
            to_jsonb(old), to_jsonb(new), array['code', 'title', 'capacity', 'waitlist_capacity']
        );
        if details -> 'fields' <> '[]'::jsonb then
            perform record_event('course.updated', null, new.id, details);
        end if;
    end if;
    return null;
end;
$$;

create or replace function student_courses_record() returns trigger
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

create or replace function course_waitlist_record() returns trigger
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
create or replace trigger students_audit
    after insert or update of name, email on students
    for each row execute function students_record();

create or replace trigger students_audit_delete
    before delete on students
    for each row execute function students_record();

-- Not fired by the seat counters' updates, which name none of these columns.
create or replace trigger courses_audit
    after insert or update of code, title, capacity, waitlist_capacity on courses
    for each row execute function courses_record();

create or replace trigger courses_audit_delete
    before delete on courses
    for each row execute function courses_record();

-- 0006's trigger for deletes only, under its name: "audit" still sorts before
-- "counted", so a dropped enrollment is recorded ahead of its promotion.
create or replace trigger student_courses_audit
    after delete on student_courses
    for each row execute function student_courses_record();

create or replace trigger course_waitlist_audit
    after insert or delete on course_waitlist
    for each row
    when (current_setting('enrollment.promoting', true) is distinct from 'on')
    execute function course_waitlist_record();
