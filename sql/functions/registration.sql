-- The rules of registration for a course of a term (spec: "Terms and the
-- rules of registration"): holds, windows and time tickets, prerequisites,
-- time conflicts, credit limits, the rules a registrar overrode, and the
-- promotions a student becoming able gives rise to. A course without a term
-- has none of them.
--
-- registration_blocker() is the one definition of the rules: enroll_run()
-- (a request or a batch's run) and promote_waitlist() (enrollments.sql) ask
-- it, and decide only what to do with its answer.
--
-- Exactness: a student's registration lock is their students row, FOR NO
-- KEY UPDATE. Every enrollment into a course of a term takes it before it
-- asks registration_blocker(), and so does every promotion, for each student
-- it considers; placing a hold takes it too (the update of students.holds
-- below). So the decisions about one student serialize, and each reads what
-- the one before it committed: two requests for overlapping courses, or for
-- more credits than the limit, cannot both pass; an enrollment that waited
-- for a hold sees it. The enrolled credits are kept in student_terms.credits
-- (counts.sql), not counted.
--
-- Becoming able. A hold removed, a completion added, a limit raised, a
-- course dropped (its meetings and credits freed) or a course's meetings,
-- credits or prerequisites changed may let a waiting student take a seat
-- that is free: the triggers below call promote_waitlist() for each course
-- concerned, in course id order, in the same transaction. Those courses are
-- changed, so their feed locks come first (lock_courses, events.sql): the
-- service calls lock_student_waits(), lock_term_waits() or
-- lock_course_rules() before the change; reserve_events() refuses a
-- promotion in a course not locked so (the transaction runs again).

-- week_minutes: a list of weekly meetings as the minutes of the week they
-- take, each meeting on each of its days the half-open range [starts, ends)
-- (Monday 00:00 is minute 0). Two lists overlap when their week_minutes do
-- (&&): a day in common and overlapping times. Kept for every course in
-- courses.meeting_times (migration 0017) by courses_meeting_times below.
create or replace function week_minutes(meetings jsonb) returns int4multirange
language sql immutable parallel safe as $$
    select coalesce(range_agg(int4range(
               (d.n - 1) * 1440 + split_part(m ->> 'starts', ':', 1)::integer * 60
                   + split_part(m ->> 'starts', ':', 2)::integer,
               (d.n - 1) * 1440 + split_part(m ->> 'ends', ':', 1)::integer * 60
                   + split_part(m ->> 'ends', ':', 2)::integer
           )), '{}')
    from jsonb_array_elements(meetings) m,
         jsonb_array_elements_text(m -> 'days') day,
         array_position(array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], day) d (n)
$$;

-- meetings_overlap: whether two lists of weekly meetings overlap, for
-- whoever compares lists that are not courses' (the rush scenario's
-- invariants, tests); a course's are in courses.meeting_times already.
create or replace function meetings_overlap(a jsonb, b jsonb) returns boolean
language sql immutable parallel safe as $$
    select week_minutes(a) && week_minutes(b)
$$;

-- courses_meeting_times: courses.meeting_times follows meetings. Only an
-- insert with meetings and an update naming meetings (or meeting_times
-- itself) fire it, so the counts' updates of every enrollment do not.
create or replace function courses_meeting_times() returns trigger
language plpgsql as $$
begin
    new.meeting_times := week_minutes(new.meetings);
    return new;
end;
$$;

create or replace trigger courses_meeting_times
    before insert or update of meetings, meeting_times on courses
    for each row
    when (new.meetings <> '[]' or new.meeting_times <> '{}')
    execute function courses_meeting_times();

-- registration_blocker: the first rule, in the order of the checks, that
-- keeps `student` out of `course` now (no row, or a null rule: none); `about`
-- says what about it (the window's edge, the missing prerequisites, the
-- conflicting course's code, the credits). Rules named in `skip` (a
-- registrar's overrides) are not checked; `windows` false skips the
-- registration window (a promotion is the service's act). No row for a
-- course without a term. The caller holds the student's registration lock
-- (the header above).
--   registration-hold       the student has a hold
--   registration-not-open   before their time ticket, else the term's opening
--   registration-closed     at or after the term's closing
--   prerequisite-missing    a prerequisite's code without a completion
--   time-conflict           a meeting overlaps one of a course of the term
--                           the student is enrolled in
--   credit-limit            enrolled credits + the course's > their limit
--
-- One SELECT in an SQL function that is stable and returns a set:
-- PostgreSQL inlines it into the statement that calls it from FROM, so
-- enroll_run() checks a run of 500 students in one plan, not 500 calls.
create or replace function registration_blocker(
    student bigint,
    course bigint,
    skip text[],
    windows boolean
)
returns table (rule text, about text[])
language sql stable as $$
    select case
               when r.held then 'registration-hold'
               when r.not_open then 'registration-not-open'
               when r.closed then 'registration-closed'
               when cardinality(r.missing) > 0 then 'prerequisite-missing'
               when r.conflicting is not null then 'time-conflict'
               when r.over then 'credit-limit'
           end,
           case
               when r.held then null
               when r.not_open then array[utc_text(r.opens)]
               when r.closed then array[utc_text(r.closes)]
               when cardinality(r.missing) > 0 then r.missing
               when r.conflicting is not null then array[r.conflicting]
               when r.over then array[
                   trim_scale(r.credits)::text, trim_scale(r.adds)::text, trim_scale(r.most)::text
               ]
           end
    from (
        select
            not 'registration-hold' = any(coalesce(skip, '{}'))
                and (select s.holds from students s where s.id = student) > 0 as held,
            windows and not 'registration-not-open' = any(coalesce(skip, '{}'))
                and now() < coalesce(mine.registration_opens_at, t.registration_opens_at)
                as not_open,
            coalesce(mine.registration_opens_at, t.registration_opens_at) as opens,
            windows and not 'registration-closed' = any(coalesce(skip, '{}'))
                and now() >= t.registration_closes_at as closed,
            t.registration_closes_at as closes,
            case when cardinality(c.prerequisites) > 0
                      and not 'prerequisite-missing' = any(coalesce(skip, '{}')) then array(
                select p.code
                from unnest(c.prerequisites) with ordinality as p (code, k)
                where not exists (
                    select 1 from student_completions d
                    where d.student_id = student and fold_case(d.code) = fold_case(p.code)
                )
                order by p.k
            ) end as missing,
            case when not isempty(c.meeting_times)
                      and not 'time-conflict' = any(coalesce(skip, '{}')) then (
                -- The meetings compared only with the student's courses of
                -- the term (OFFSET 0: found first, not tested on every
                -- course of the term).
                select y.code
                from (
                    select x.id, x.code, x.meeting_times
                    from student_courses e
                    join courses x on x.id = e.course_id
                    where e.student_id = student and x.term_id = c.term_id and x.id <> c.id
                    offset 0
                ) y
                where y.meeting_times && c.meeting_times
                order by y.id
                limit 1
            ) end as conflicting,
            c.credits > 0 and not 'credit-limit' = any(coalesce(skip, '{}'))
                and coalesce(mine.credits, 0) + c.credits
                    > coalesce(mine.max_credits, t.max_credits) as over,
            coalesce(mine.credits, 0) as credits,
            c.credits as adds,
            coalesce(mine.max_credits, t.max_credits) as most
        from courses c
        join terms t on t.id = c.term_id
        left join student_terms mine on mine.student_id = student and mine.term_id = c.term_id
        where c.id = course
        -- Each check once: the cases above read each column twice.
        offset 0
    ) r
$$;

-- A timestamp as the API writes it: RFC 3339 in UTC.
create or replace function utc_text(at timestamptz) returns text
language sql immutable as $$
    select to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- The overrides an event records: {"overrides": [...]} when there are any.
create or replace function overrides_data(overrides text[]) returns jsonb
language sql immutable as $$
    select case when cardinality(overrides) > 0
                then jsonb_build_object('overrides', to_jsonb(overrides))
                else '{}'::jsonb end
$$;

-- The feed locks a change that may promote takes first (the header above):
-- lock_student_waits the courses `student` waits for (in `term`, or in any
-- when null); lock_term_waits the courses of `term` with someone waiting;
-- lock_course_rules `course` and the courses of its term that its enrolled
-- students wait for.
create or replace function lock_student_waits(student bigint, term bigint) returns void
language sql as $$
    select lock_courses(array(
        select w.course_id
        from course_waitlist w
        join courses x on x.id = w.course_id
        where w.student_id = student and (term is null or x.term_id = term)
    ))
$$;

create or replace function lock_term_waits(term bigint) returns void
language sql as $$
    select lock_courses(array(
        select x.id from courses x where x.term_id = term and x.waitlisted > 0
    ))
$$;

create or replace function lock_course_rules(course bigint) returns void
language sql as $$
    select lock_courses(array[course] || array(
        select w.course_id
        from courses c
        join student_courses e on e.course_id = c.id
        join course_waitlist w on w.student_id = e.student_id
        join courses x on x.id = w.course_id and x.term_id = c.term_id
        where c.id = course and c.term_id is not null
    ))
$$;

-- promote_student: the courses `student` waits for (in `term`, or in any when
-- null) given to the head of their queues again, in course id order: the
-- student may have become able to take a free seat.
create or replace function promote_student(student bigint, term bigint) returns void
language plpgsql as $$
declare
    course bigint;
begin
    for course in
        select w.course_id
        from course_waitlist w
        join courses x on x.id = w.course_id
        where w.student_id = student and x.term_id is not null
          and (term is null or x.term_id = term)
          and (x.capacity is null or x.enrolled < x.capacity)
        order by w.course_id
    loop
        perform promote_waitlist(course);
    end loop;
end;
$$;

-- holds: students.holds counts a student's holds; placing one updates their
-- row, which waits for the enrollments holding their registration lock, and
-- those after it see the hold. Removing the last one may promote.
create or replace function student_holds_changed() returns trigger
language plpgsql as $$
declare
    remaining integer;
begin
    if tg_op = 'INSERT' then
        update students set holds = holds + 1 where id = new.student_id;
        perform record_event('hold.placed', new.student_id, null,
                             jsonb_build_object('hold_id', new.id));
    else
        update students set holds = holds - 1 where id = old.student_id
        returning holds into remaining;
        perform record_event('hold.removed', old.student_id, null,
                             jsonb_build_object('hold_id', old.id));
        if remaining = 0 then
            perform promote_student(old.student_id, null);
        end if;
    end if;
    return null;
end;
$$;

create or replace trigger student_holds_counted
    after insert or delete on student_holds
    for each row execute function student_holds_changed();

-- students.holds changes only from the trigger above.
create or replace trigger students_holds_kept
    before update of holds on students
    for each row
    when (pg_trigger_depth() = 0)
    execute function refuse_counted_change(
        'holds is kept by the database: add or remove holds', 'students_holds_kept');

-- completions: recorded (the code, not a name); one added may promote.
create or replace function student_completions_changed() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        perform record_event('completion.added', new.student_id, null,
                             jsonb_build_object('completion_id', new.id, 'code', new.code));
        perform promote_student(new.student_id, null);
    else
        perform record_event('completion.removed', old.student_id, null,
                             jsonb_build_object('completion_id', old.id, 'code', old.code));
    end if;
    return null;
end;
$$;

create or replace trigger student_completions_recorded
    after insert or delete on student_completions
    for each row execute function student_completions_changed();

-- A student's own credit limit set or changed may promote them in the term.
create or replace function student_terms_limit_changed() returns trigger
language plpgsql as $$
begin
    perform promote_student(new.student_id, new.term_id);
    return null;
end;
$$;

create or replace trigger student_terms_limit_set
    after insert on student_terms
    for each row
    when (new.max_credits is not null)
    execute function student_terms_limit_changed();

create or replace trigger student_terms_limit_changed
    after update of max_credits on student_terms
    for each row
    when (new.max_credits is distinct from old.max_credits)
    execute function student_terms_limit_changed();

-- terms: created, updated (which fields) and deleted recorded; a credit
-- limit changed may promote in every course of the term.
create or replace function terms_record() returns trigger
language plpgsql as $$
declare
    details jsonb;
begin
    if tg_op = 'INSERT' then
        perform record_event('term.created', null, null, jsonb_build_object('term_id', new.id));
    elsif tg_op = 'DELETE' then
        perform record_event('term.deleted', null, null, jsonb_build_object('term_id', old.id));
        return old;
    else
        details := changed_fields(
            to_jsonb(old), to_jsonb(new),
            array['code', 'title', 'starts_on', 'ends_on', 'registration_opens_at',
                  'registration_closes_at', 'drop_deadline', 'max_credits']
        );
        if details -> 'fields' <> '[]'::jsonb then
            perform record_event('term.updated', null, null,
                                 jsonb_build_object('term_id', new.id) || details);
        end if;
        if new.max_credits is distinct from old.max_credits then
            perform promote_waitlist(x.id)
            from courses x
            where x.term_id = new.id and x.waitlisted > 0
              and (x.capacity is null or x.enrolled < x.capacity)
            order by x.id;
        end if;
    end if;
    return null;
end;
$$;

create or replace trigger terms_audit
    after insert or update on terms
    for each row execute function terms_record();

create or replace trigger terms_audit_delete
    before delete on terms
    for each row execute function terms_record();

-- courses_term_kept: a course with students enrolled or waiting stays in its
-- term (under the row's lock, which every change to its counts takes).
create or replace trigger courses_term_kept
    before update of term_id on courses
    for each row
    when (new.term_id is distinct from old.term_id and (old.enrolled > 0 or old.waitlisted > 0))
    execute function refuse_counted_change(
        'a course with students enrolled or waiting keeps its term', 'courses_term_id_not_empty');

-- courses_registration_changed: a course's credits, meetings or
-- prerequisites changed. Its enrolled students' kept credits follow (no one
-- is dropped, whatever their limit now); its own queue and its students'
-- other queues in the term may promote.
create or replace function courses_registration_changed() returns trigger
language plpgsql as $$
declare
    student bigint;
begin
    if new.credits <> old.credits then
        update student_terms st
        set credits = st.credits + (new.credits - old.credits)
        from (
            select e.student_id from student_courses e
            where e.course_id = new.id order by e.student_id
        ) e
        where st.student_id = e.student_id and st.term_id = new.term_id;
    end if;
    perform promote_waitlist(new.id);
    for student in
        select e.student_id from student_courses e where e.course_id = new.id order by e.student_id
    loop
        perform promote_student(student, new.term_id);
    end loop;
    return null;
end;
$$;

create or replace trigger courses_registration_changed
    after update of credits, meetings, prerequisites on courses
    for each row
    when (new.term_id is not null and (new.credits <> old.credits
          or new.meetings <> old.meetings or new.prerequisites <> old.prerequisites))
    execute function courses_registration_changed();

-- courses_registration_deleted: a course of a term with students enrolled
-- is deleted. Before the row goes (its enrollments go after it, by the
-- foreign key's cascade, when the course can no longer be read): their
-- credits in the term are freed, and the course's term is noted in the
-- transaction-local setting enrollment.deleted_courses (",course:term,")
-- for student_courses_count_delete (counts.sql), which then looks at each
-- student's other queues in the term.
create or replace function courses_registration_deleted() returns trigger
language plpgsql as $$
begin
    update student_terms st
    set credits = st.credits - old.credits
    from (
        select e.student_id from student_courses e where e.course_id = old.id order by e.student_id
    ) e
    where st.student_id = e.student_id and st.term_id = old.term_id;
    perform set_config(
        'enrollment.deleted_courses',
        coalesce(nullif(current_setting('enrollment.deleted_courses', true), ''), ',')
            || old.id || ':' || old.term_id || ',',
        true
    );
    return old;
end;
$$;

-- The term of a course courses_registration_deleted noted, or null.
create or replace function course_deleted_term(course bigint) returns bigint
language sql stable as $$
    select substring(
        current_setting('enrollment.deleted_courses', true) from ',' || course || ':(\d+),'
    )::bigint
$$;

create or replace trigger courses_registration_deleted
    before delete on courses
    for each row
    when (old.term_id is not null and old.enrolled > 0)
    execute function courses_registration_deleted();
