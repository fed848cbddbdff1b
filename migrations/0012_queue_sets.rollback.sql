-- Undo 0012: 0005's row trigger counting departures from the queue, 0006's
-- audit trigger without its condition, 0005's promote_waitlist(), and 0010's
-- student_courses_inserted() and batch_enroll, word for word. No data changes.

set local lock_timeout = '5s';

drop trigger course_waitlist_counted_deleted on course_waitlist;
drop function course_waitlist_deleted();

-- As in 0005_waitlists.
create trigger course_waitlist_counted_delete
    after delete on course_waitlist
    for each row execute function course_waitlist_count_delete();

drop trigger course_waitlist_audit on course_waitlist;

-- As in 0006_events.
create trigger course_waitlist_audit
    after insert or delete on course_waitlist
    for each row execute function course_waitlist_record();

-- As in 0005_waitlists.
create or replace function promote_waitlist(c bigint) returns void
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

-- As in 0010_bulk_counts.
create or replace function student_courses_inserted() returns trigger
language plpgsql as $$
declare
    added integer;
    first_course bigint;
    last_course bigint;
    course record;
    waiting record;
    n integer := coalesce(nullif(current_setting('enrollment.event_n', true), ''), '0')::integer;
    actor text := current_setting('enrollment.actor', true);
begin
    select count(*), min(i.course_id), max(i.course_id) into added, first_course, last_course
    from inserted i;
    if added = 0 then
        return null;  -- an ON CONFLICT that found the enrollment
    end if;

    if n + added >= 1048576 then
        raise exception 'a transaction records at most 1048575 events: split it'
            using errcode = 'program_limit_exceeded';
    end if;
    perform set_config('enrollment.event_n', (n + added)::text, true);
    insert into events (id, type, actor, student_id, course_id, data)
    select (pg_current_xact_id()::text::bigint << 20) | (n + i.k),
           'enrollment.created',
           case when actor is null then 'sql:' || session_user else nullif(actor, '') end,
           i.student_id,
           i.course_id,
           -- Inserted by a trigger (promote_waitlist): a promotion.
           jsonb_build_object(
               'via', case when pg_trigger_depth() > 1 then 'waitlist' else 'request' end
           )
    from (select row_number() over () as k, student_id, course_id from inserted) i
    order by i.k;

    -- The check constraint refuses a seat too many. Several courses are
    -- updated in course id order, so two such statements lock them in one order.
    if first_course = last_course then
        update courses set enrolled = enrolled + added where id = first_course;
    else
        for course in
            select i.course_id, count(*)::integer as added
            from inserted i
            group by i.course_id
            order by i.course_id
        loop
            update courses set enrolled = enrolled + course.added where id = course.course_id;
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

-- As in 0010_bulk_counts.
create or replace function batch_enroll(
    drops boolean[],
    student_ids bigint[],
    student_emails text[],
    course_ids bigint[],
    course_codes text[],
    waitlists boolean[],
    actor text
)
returns table (
    item bigint,
    outcome text,
    student_id bigint,
    course_id bigint,
    code text,
    title text,
    capacity integer,
    waitlist_capacity integer,
    enrolled integer,
    waitlisted integer,
    created_at timestamptz,
    enrolled_at timestamptz,
    waitlisted_at timestamptz,
    queue_position bigint
)
language plpgsql as $$
#variable_conflict use_column
declare
    it record;
    c record;
    course_found boolean := false;
    reuse boolean;
    c_ref text;
    student bigint;
    seq_ bigint;
    items integer := coalesce(array_length(drops, 1), 0);
    -- Items up to this one were answered by a run.
    answered bigint := 0;
    run_end integer;
    run_students bigint[];
    run_since timestamptz[];
    run_fresh boolean[];
    run_cut integer;
    run_rows bigint;
begin
    perform set_config('enrollment.actor', actor, true);
    for it in
        select *
        from unnest(drops, student_ids, student_emails, course_ids, course_codes, waitlists)
            with ordinality as t (is_drop, sid, email, cid, ccode, wait, n)
        order by n
    loop
        if it.n <= answered then
            continue;
        end if;
        item := it.n;
        outcome := null;
        student_id := it.sid;
        course_id := it.cid;
        code := null; title := null; capacity := null; waitlist_capacity := null;
        enrolled := null; waitlisted := null; created_at := null;
        enrolled_at := null; waitlisted_at := null; queue_position := null;

        if it.is_drop then
            -- A drop changes the counts (a promotion) behind the course kept below.
            course_found := false;
            if it.sid is null then
                select s.id into student_id from students s
                where fold_case(s.email) = fold_case(it.email);
                if not found then
                    outcome := 'student-not-found';
                    return next;
                    continue;
                end if;
            end if;
            if it.cid is null then
                select x.id into course_id from courses x
                where fold_case(x.code) = fold_case(it.ccode);
                if not found then
                    outcome := 'course-not-found';
                    return next;
                    continue;
                end if;
            end if;
            -- The seat freed goes to the head of the queue (student_courses_counted_delete).
            delete from student_courses sc
            where sc.student_id = batch_enroll.student_id and sc.course_id = batch_enroll.course_id;
            outcome := case when found then 'dropped' else 'not-enrolled' end;
            return next;
            continue;
        end if;

        -- The course of the item before, when it is the same: its row is locked
        -- already and its counts are tracked here, so it is not read again (an
        -- update of one row many times in a transaction makes each later read
        -- of it walk every version made so far).
        reuse := false;
        if course_found then
            reuse := coalesce(it.cid = c.id or it.cid is null and it.ccode = c_ref, false);
        end if;
        if not reuse then
            if it.cid is not null then
                select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
                       x.waitlisted, x.created_at
                into c
                from courses x where x.id = it.cid
                for no key update;
            else
                select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
                       x.waitlisted, x.created_at
                into c
                from courses x where fold_case(x.code) = fold_case(it.ccode)
                for no key update;
            end if;
            course_found := found;
            c_ref := it.ccode;
        end if;

        -- A free seat: this item starts a run (see above) when the next one is of it.
        if course_found and (c.capacity is null or c.enrolled < c.capacity) then
            run_end := it.n;
            while run_end < items and not drops[run_end + 1]
                  and coalesce(case when it.cid is not null then course_ids[run_end + 1] = it.cid
                               else course_ids[run_end + 1] is null
                                    and course_codes[run_end + 1] = it.ccode end, false)
            loop
                run_end := run_end + 1;
            end loop;
        else
            run_end := it.n;
        end if;
        if run_end > it.n then
            -- Each item's student (locked as the single path locks it, in item
            -- order), its enrollment from before the batch, and whether it is
            -- new: not enrolled yet, and not by an earlier item of the run.
            select array_agg(r.student order by r.k), array_agg(r.since order by r.k),
                   array_agg(r.fresh order by r.k),
                   min(r.k) filter (where r.fresh and r.taken > coalesce(c.capacity - c.enrolled, r.taken))
            into run_students, run_since, run_fresh, run_cut
            from (
                select d.k, d.student, d.since, d.fresh,
                       count(*) filter (where d.fresh) over (order by d.k) as taken
                from (
                    select l.k, l.student, sc.enrolled_at as since,
                           l.student is not null and sc.enrolled_at is null
                               and row_number() over (partition by l.student order by l.k) = 1
                               as fresh
                    from (
                        select t.k,
                               case when t.sid is not null then
                                   (select s.id from students s where s.id = t.sid for key share)
                               else
                                   (select s.id from students s
                                    where fold_case(s.email) = fold_case(t.email) for key share)
                               end as student
                        from unnest(student_ids[it.n:run_end], student_emails[it.n:run_end])
                            with ordinality as t (sid, email, k)
                    ) l
                    left join student_courses sc
                        on sc.student_id = l.student and sc.course_id = c.id
                ) d
            ) r;
            -- The items before the first that finds no seat left.
            run_cut := coalesce(run_cut, run_end - it.n + 2);
            return query
            with run as (
                select r.k, r.student, r.since, r.fresh
                from unnest(run_students, run_since, run_fresh) with ordinality as r (student, since, fresh, k)
                where r.k < run_cut
            ),
            seated as (
                insert into student_courses (student_id, course_id)
                select run.student, c.id from run where run.fresh order by run.k
                returning student_courses.student_id, student_courses.enrolled_at
            )
            select it.n + run.k - 1,
                   case when run.student is null then 'student-not-found'
                        when run.fresh then 'enrolled'
                        else 'already-enrolled' end,
                   coalesce(run.student, student_ids[it.n + run.k - 1]),
                   case when run.student is null then it.cid else c.id end,
                   case when run.student is not null then c.code end,
                   case when run.student is not null then c.title end,
                   case when run.student is not null then c.capacity end,
                   case when run.student is not null then c.waitlist_capacity end,
                   case when run.student is not null then
                       c.enrolled + (count(*) filter (where run.fresh) over (order by run.k))::integer
                   end,
                   case when run.student is not null then c.waitlisted end,
                   case when run.student is not null then c.created_at end,
                   coalesce(run.since, s.enrolled_at),
                   null::timestamptz,
                   null::bigint
            from run
            left join seated s on s.student_id = run.student
            order by run.k;
            get diagnostics run_rows = row_count;
            c.enrolled := c.enrolled + (
                select count(*) from unnest(run_fresh[1:run_cut - 1]) as r (fresh) where r.fresh
            );
            answered := it.n + run_rows - 1;
            continue;
        end if;

        if it.sid is not null then
            select s.id into student from students s where s.id = it.sid for key share;
        else
            select s.id into student from students s
            where fold_case(s.email) = fold_case(it.email)
            for key share;
        end if;
        -- As the enroll statement: a missing student is named before a missing course.
        if student is null then
            outcome := 'student-not-found';
            return next;
            continue;
        end if;
        student_id := student;
        if not course_found then
            outcome := 'course-not-found';
            return next;
            continue;
        end if;
        course_id := c.id;

        if c.capacity is null or c.enrolled < c.capacity then
            -- A free seat, so no one waits (invariant 3 of 0005): enroll, or
            -- find them enrolled already.
            insert into student_courses (student_id, course_id) values (student, c.id)
            on conflict do nothing
            returning enrolled_at into enrolled_at;
            if found then
                outcome := 'enrolled';
                c.enrolled := c.enrolled + 1;
            else
                outcome := 'already-enrolled';
                select sc.enrolled_at into enrolled_at
                from student_courses sc where sc.student_id = student and sc.course_id = c.id;
            end if;
        else
            select sc.enrolled_at into enrolled_at
            from student_courses sc where sc.student_id = student and sc.course_id = c.id;
            if found then
                outcome := 'already-enrolled';
            else
                select w.waitlisted_at, w.seq into waitlisted_at, seq_
                from course_waitlist w where w.student_id = student and w.course_id = c.id;
                if found then
                    outcome := 'already-waiting';
                    select count(*) into queue_position
                    from course_waitlist a where a.course_id = c.id and a.seq <= seq_;
                elsif it.wait and c.waitlisted < c.waitlist_capacity then
                    insert into course_waitlist (student_id, course_id) values (student, c.id)
                    returning waitlisted_at into waitlisted_at;
                    outcome := 'waitlisted';
                    c.waitlisted := c.waitlisted + 1;
                    queue_position := c.waitlisted;
                elsif it.wait and c.waitlist_capacity > 0 then
                    outcome := 'waitlist-full';
                else
                    outcome := 'course-full';
                end if;
            end if;
        end if;
        code := c.code; title := c.title; capacity := c.capacity;
        waitlist_capacity := c.waitlist_capacity; enrolled := c.enrolled;
        waitlisted := c.waitlisted; created_at := c.created_at;
        student := null;
        return next;
    end loop;
end;
$$;
