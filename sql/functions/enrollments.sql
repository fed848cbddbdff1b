-- Enrolling, dropping and promoting: the one definition of who gets a seat,
-- who waits and who moves up. The single request (sql/enrollments.sql), every
-- item of a batch (batch_enroll, sql/functions/batches.sql) and every
-- promotion go through these functions; the triggers of counts.sql keep the
-- counts and refuse, as a last guard, whatever breaks the invariants (a seat
-- too many, a student both seated and waiting, a queue while a seat is free).
--
-- Locks, in this order everywhere: the course row (FOR NO KEY UPDATE), then
-- the students (FOR KEY SHARE, as a foreign key check takes them). Under
-- the course lock no other change to its seats or its queue can commit, and
-- each statement below reads what committed before the lock was granted
-- (READ COMMITTED takes a new snapshot per statement), so what it decides
-- holds when it commits: no re-check, no retry.

-- seats_left: the seats a course has free, null when it has no limit. The
-- one rule of "a seat is free", for enroll_run() and promote_waitlist().
create or replace function seats_left(capacity integer, enrolled integer) returns integer
language sql immutable as $$
    select capacity - enrolled
$$;

-- enroll_run: a run of enroll items into one course, in order, as if applied
-- one by one; one row per item, k its place in the run (1-based).
--
-- The course is course_ref (an id) or, when that is null, the course of term
-- course_term (null: the courses without a term) whose code folds to
-- course_code's fold. Item k's student is student_refs[k] (a null: none, as
-- batch_enroll passes an email that names no one); waits[k] asks for a
-- place in the queue when no seat is left; overrides[k] names the rules a
-- registrar overrode for it, comma-separated (null: none); sourced_ids[k] is
-- the sourced_id of the enrollment it makes (null, or a null array: a new
-- UUID, sourced_id_or_new(), sourced_ids.sql); a place in the queue does not
-- keep it. actor goes to the events (record_event(), sql/functions/events.sql).
--
-- The rules, in the order they decide an item:
-- 1. No such student: student-not-found (named before a missing course);
--    no such course: course-not-found.
-- 2. Enrolled already (before the run, or by an earlier item of it):
--    already-enrolled. Waiting already: already-waiting, with the position.
-- 3. A course of a term: the first rule of registration the student fails
--    (registration_blocker(), registration.sql), its slug, with `about`.
--    Then a sourced_id another enrollment has, or an earlier item of the
--    run asks for: sourced-id-taken (an existing enrollment keeps its own,
--    whatever the item names: rule 2).
-- 4. A seat while one is free (a null capacity: always): enrolled. Free
--    seats go to the run's new students in item order.
-- 5. No seat left and waits[k]: a place at the end of the queue while the
--    waitlist has room (waitlisted, its position), else waitlist-full; a
--    course with no waitlist at all (waitlist_capacity 0) is course-full.
-- 6. No seat left and not waits[k]: course-full.
--
-- Set-based: one statement classifies the whole run and inserts its seats,
-- one inserts its places in the queue, so a run of n new enrollments costs
-- one insert and one update of the course's counts, not n (a row updated n
-- times in one transaction makes each later read walk its n versions). For
-- a course of a term, one statement before them takes the run's students'
-- registration locks, in id order (registration.sql).
create or replace function enroll_run(
    course_ref bigint,
    course_term bigint,
    course_code text,
    student_refs bigint[],
    waits boolean[],
    overrides text[],
    sourced_ids text[],
    actor text
)
returns table (
    k integer,
    outcome text,
    about text[],
    student_id bigint,
    course_id bigint,
    code text,
    title text,
    capacity integer,
    waitlist_capacity integer,
    enrolled integer,
    waitlisted integer,
    created_at timestamptz,
    term_id bigint,
    credits numeric,
    meetings jsonb,
    prerequisites text[],
    enrolled_at timestamptz,
    waitlisted_at timestamptz,
    queue_position bigint,
    sourced_id text
)
language plpgsql
-- One plan per session for each statement: planned with the values each
-- time (the default for its first five calls, and after whenever the
-- planner judges it better), the run's statement costs 1 to 2 ms to plan
-- and well under that to run.
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    course bigint;
    c record;
    course_found boolean;
    free_seats integer;
    room integer;
    students bigint[];
    outcomes text[];
    abouts jsonb[];
    enrolled_after integer[];
    waitlisted_after integer[];
    positions bigint[];
    queued integer;
    counted integer;
begin
    perform set_config('enrollment.actor', actor, true);
    -- The course's feed lock first, then its row (lock_courses, events.sql).
    course := course_ref;
    if course is null then
        select x.id into course from courses x
        where fold_case(x.code) = fold_case(course_code)
          and coalesce(x.term_id, 0) = coalesce(course_term, 0);
    end if;
    perform lock_courses(array[course]);
    select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
           x.waitlisted, x.created_at, x.term_id, x.credits, x.meetings, x.prerequisites
    into c
    from courses x where x.id = course
    for no key update;
    course_found := found;
    if course_found then
        free_seats := seats_left(c.capacity, c.enrolled);
        room := c.waitlist_capacity - c.waitlisted;
        if c.term_id is not null then
            perform 1 from students s where s.id = any(student_refs) order by s.id
            for no key update;
        end if;
    end if;

    -- Each item's student, locked in item order; what it holds in this
    -- course; the rules above, as window functions over the run; the seats.
    with items as (
        select t.k::integer as k, t.wait, string_to_array(t.skip, ',') as skip, t.named,
               (select s.id from students s where s.id = t.sid for key share) as student
        from unnest(student_refs, waits, overrides, sourced_ids)
            with ordinality as t (sid, wait, skip, named, k)
    ),
    standing as (
        select i.k, i.wait, i.skip, i.student, i.named, sc.enrolled_at is not null as was_enrolled,
               w.seq as waiting_seq, b.rule as blocker, b.about,
               course_found and i.student is not null and sc.enrolled_at is null
                   and w.seq is null and b.rule is null as eligible
        from items i
        left join student_courses sc on sc.student_id = i.student and sc.course_id = c.id
        left join course_waitlist w on w.student_id = i.student and w.course_id = c.id
        left join lateral (
            select r.rule, r.about from registration_blocker(i.student, c.id, i.skip, true) r
            where course_found and c.term_id is not null and i.student is not null
              and sc.enrolled_at is null and w.seq is null
        ) b on true
    ),
    -- Rule 3's sourced_id: the one unique index decides, read under no
    -- lock: one inserted by a concurrent transaction since is refused by
    -- the index, the statement with it (student_courses_sourced_id_key).
    held as (
        select o.*,
               o.eligible and o.named is not null
                   and (o.k > min(o.k) filter (where o.eligible) over (partition by o.named)
                        or exists (select from student_courses x where x.sourced_id = o.named))
                   as named_taken
        from standing o
    ),
    news as (
        select h.*, h.eligible and not h.named_taken as new
        from held h
    ),
    firsts as (
        select h.*,
               h.k = min(h.k) filter (where h.new) over (partition by h.student) as first,
               h.k = min(h.k) filter (where h.new and h.wait) over (partition by h.student)
                   as first_wait
        from news h
    ),
    -- Rule 4: the new students' first items, numbered; a seat for the first
    -- free_seats of them.
    seat as (
        select f.*,
               coalesce(f.first, false)
                   and count(*) filter (where f.first) over (order by f.k)
                       <= coalesce(free_seats, f.k) as seated
        from firsts f
    ),
    -- Rule 5: the first item asking to wait of each new student without a
    -- seat, numbered; a place for the first `room` of them.
    queue as (
        select s.*,
               coalesce(s.first_wait, false)
                   and not bool_or(s.seated) over (partition by s.student) as candidate
        from seat s
    ),
    ranked as (
        select q.*,
               case when q.candidate then
                   count(*) filter (where q.candidate) over (order by q.k)
               end as queue_rank
        from queue q
    ),
    placed as (
        select r.*, coalesce(r.queue_rank <= room, false) as placed,
               min(r.k) filter (where r.seated) over (partition by r.student) as seated_by
        from ranked r
    ),
    decided as (
        select p.k, p.student, p.waiting_seq, p.about, p.named,
               case
                   when p.student is null then 'student-not-found'
                   when not course_found then 'course-not-found'
                   when p.was_enrolled or p.k > p.seated_by then 'already-enrolled'
                   when p.waiting_seq is not null then 'already-waiting'
                   -- After the item that queued this student.
                   when p.k > min(p.k) filter (where p.placed) over (partition by p.student)
                       then 'already-waiting'
                   when p.blocker is not null then p.blocker
                   when p.named_taken then 'sourced-id-taken'
                   when p.seated then 'enrolled'
                   when p.placed then 'waitlisted'
                   when p.wait and c.waitlist_capacity > 0 then 'waitlist-full'
                   else 'course-full'
               end as outcome,
               count(*) filter (where p.seated) over (order by p.k) as seats_taken,
               count(*) filter (where p.placed) over (order by p.k) as places_taken,
               max(p.queue_rank) filter (where p.placed) over (partition by p.student) as rank
        from placed p
    ),
    seated as (
        insert into student_courses (student_id, course_id, overrides, sourced_id)
        select d.student, c.id, nullif(string_to_array(overrides[d.k], ','), '{}'),
               sourced_id_or_new(d.named)
        from decided d where d.outcome = 'enrolled' order by d.k
        returning 1
    )
    select array_agg(d.student order by d.k),
           array_agg(d.outcome order by d.k),
           array_agg(to_jsonb(d.about) order by d.k),
           array_agg(c.enrolled + d.seats_taken order by d.k),
           array_agg(c.waitlisted + d.places_taken order by d.k),
           array_agg(c.waitlisted + d.rank order by d.k),
           count(*) filter (where d.outcome = 'waitlisted'),
           (select count(*) from seated)
    into students, outcomes, abouts, enrolled_after, waitlisted_after, positions, queued, counted
    from decided d;

    -- Rule 5's places, in item order, after the seats: the queue's guard
    -- (course_waitlist_checked) sees the course full only once they count.
    if queued > 0 then
        insert into course_waitlist (student_id, course_id, overrides)
        select u.student, c.id, nullif(string_to_array(overrides[u.k], ','), '{}')
        from unnest(students, outcomes) with ordinality as u (student, outcome, k)
        where u.outcome = 'waitlisted'
        order by u.k;
    end if;

    return query
    select u.k::integer,
           u.outcome,
           case when u.about is not null then array(select jsonb_array_elements_text(u.about)) end,
           coalesce(u.student, student_refs[u.k]),
           case when u.student is null or not course_found then course_ref else c.id end,
           f.code, f.title, f.capacity, f.waitlist_capacity,
           case when f.shown then u.enrolled_after end,
           case when f.shown then u.waitlisted_after end,
           f.created_at, f.term_id, f.credits, f.meetings, f.prerequisites,
           sc.enrolled_at,
           w.waitlisted_at,
           case
               when u.outcome not in ('waitlisted', 'already-waiting') then null
               when u.position is not null then u.position
               -- Waiting from before the run: the entries up to theirs.
               else (select count(*) from course_waitlist a
                     where a.course_id = c.id and a.seq <= w.seq)
           end,
           sc.sourced_id
    from unnest(students, outcomes, abouts, enrolled_after, waitlisted_after, positions)
        with ordinality as u (student, outcome, about, enrolled_after, waitlisted_after, position, k)
    -- The course's fields, for the items that found both it and their student.
    left join lateral (
        select true as shown, c.code, c.title, c.capacity, c.waitlist_capacity, c.created_at,
               c.term_id, c.credits, c.meetings, c.prerequisites
        where course_found and u.student is not null
    ) f on true
    left join student_courses sc
        on u.outcome in ('enrolled', 'already-enrolled')
        and sc.student_id = u.student and sc.course_id = c.id
    left join course_waitlist w
        on u.outcome in ('waitlisted', 'already-waiting')
        and w.student_id = u.student and w.course_id = c.id
    order by u.k;
end;
$$;

-- enroll_run as the release before sourced_ids called it (a rolling
-- deploy's old instances): no sourced_ids, the result without the
-- enrollment's sourced_id. A later release drops it.
create or replace function enroll_run(
    course_ref bigint,
    course_term bigint,
    course_code text,
    student_refs bigint[],
    waits boolean[],
    overrides text[],
    actor text
)
returns table (
    k integer,
    outcome text,
    about text[],
    student_id bigint,
    course_id bigint,
    code text,
    title text,
    capacity integer,
    waitlist_capacity integer,
    enrolled integer,
    waitlisted integer,
    created_at timestamptz,
    term_id bigint,
    credits numeric,
    meetings jsonb,
    prerequisites text[],
    enrolled_at timestamptz,
    waitlisted_at timestamptz,
    queue_position bigint
)
language sql as $$
    select r.k, r.outcome, r.about, r.student_id, r.course_id, r.code, r.title, r.capacity,
           r.waitlist_capacity, r.enrolled, r.waitlisted, r.created_at, r.term_id, r.credits,
           r.meetings, r.prerequisites, r.enrolled_at, r.waitlisted_at, r.queue_position
    from enroll_run(course_ref, course_term, course_code, student_refs, waits, overrides,
                    null::text[], actor) r
$$;

-- enroll_run as the release before terms called it (a rolling deploy's old
-- instances): no term, no overrides, the result without about and the
-- course's new fields. A later release drops it.
create or replace function enroll_run(
    course_ref bigint,
    course_code text,
    student_refs bigint[],
    waits boolean[],
    actor text
)
returns table (
    k integer,
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
language sql as $$
    select r.k, r.outcome, r.student_id, r.course_id, r.code, r.title, r.capacity,
           r.waitlist_capacity, r.enrolled, r.waitlisted, r.created_at, r.enrolled_at,
           r.waitlisted_at, r.queue_position
    from enroll_run(course_ref, null, course_code, student_refs, waits, null, null::text[],
                    actor) r
$$;

-- drop_enrollment: unenroll a student (student_ref, or by email) from a
-- course (course_ref, or by code in term course_term). The seat freed goes
-- to the head of the queue in the same transaction
-- (student_courses_counted_delete, promote_waitlist), and, in a course of a
-- term, the student's other queues in the term are looked at again
-- (registration.sql). At or after the term's drop_deadline the drop is
-- refused (drop-deadline-passed) unless `overrides` (comma-separated) names
-- that rule; the enrollment.deleted event records the overrides. One row:
-- dropped, not-enrolled, drop-deadline-passed, student-not-found or
-- course-not-found, with the ids found.
create or replace function drop_enrollment(
    student_ref bigint,
    student_email text,
    course_ref bigint,
    course_term bigint,
    course_code text,
    overrides text,
    actor text
)
returns table (outcome text, student_id bigint, course_id bigint)
language plpgsql as $$
#variable_conflict use_column
declare
    term bigint;
    deadline timestamptz;
    skip text[] := coalesce(string_to_array(overrides, ','), '{}');
begin
    perform set_config('enrollment.actor', actor, true);
    student_id := student_ref;
    course_id := course_ref;
    if student_ref is null then
        select s.id into student_id from students s
        where fold_case(s.email) = fold_case(student_email);
        if not found then
            outcome := 'student-not-found';
            return next;
            return;
        end if;
    end if;
    if course_ref is null then
        select x.id into course_id from courses x
        where fold_case(x.code) = fold_case(course_code)
          and coalesce(x.term_id, 0) = coalesce(course_term, 0);
        if not found then
            outcome := 'course-not-found';
            return next;
            return;
        end if;
    end if;
    select x.term_id into term from courses x where x.id = drop_enrollment.course_id;
    -- The course, and the student's other queues in its term, may promote.
    perform lock_courses(array[course_id]);
    if term is not null then
        perform lock_student_waits(student_id, term);
        -- The student's registration lock (registration.sql), before their
        -- credits change and their other queues are looked at.
        perform 1 from students s where s.id = drop_enrollment.student_id for no key update;
        select t.drop_deadline into deadline from terms t where t.id = term;
        if now() >= deadline and not 'drop-deadline-passed' = any(skip)
           and exists (
               select 1 from student_courses sc
               where sc.student_id = drop_enrollment.student_id
                 and sc.course_id = drop_enrollment.course_id
           ) then
            outcome := 'drop-deadline-passed';
            return next;
            return;
        end if;
    end if;
    perform set_config('enrollment.overrides', array_to_string(skip, ','), true);
    delete from student_courses sc
    where sc.student_id = drop_enrollment.student_id and sc.course_id = drop_enrollment.course_id;
    outcome := case when found then 'dropped' else 'not-enrolled' end;
    perform set_config('enrollment.overrides', '', true);
    return next;
end;
$$;

-- drop_enrollment as the release before terms called it (a rolling
-- deploy's old instances). A later release drops it.
create or replace function drop_enrollment(
    student_ref bigint,
    student_email text,
    course_ref bigint,
    course_code text,
    actor text
)
returns table (outcome text, student_id bigint, course_id bigint)
language sql as $$
    select d.outcome, d.student_id, d.course_id
    from drop_enrollment(student_ref, student_email, course_ref, null, course_code, null, actor) d
$$;

-- promote_waitlist: the free seats of course c to the first students of its
-- queue who may take them, in queue order. Called by the triggers that free
-- or add seats (student_courses_counted_delete, courses_promote_on_capacity),
-- which hold the course row's lock: they have just updated the row; and by
-- those of registration.sql when a student may have become able. A student
-- deleted by the statement that freed the seat is passed over: the cascade
-- removes their entry.
--
-- A course without a term: the head of the queue, as many as there are
-- seats, set-based: one delete and one insert for n students, their events
-- written here, one pair per student in queue order (waitlist.left
-- "promoted", then enrollment.created "waitlist"), numbered as
-- record_event() numbers them; while the transaction-local setting
-- enrollment.promoting is 'on' the triggers that would record them
-- (course_waitlist_audit, student_courses_counted_inserted) record nothing.
--
-- A course of a term: the queue in order, each student under their
-- registration lock (registration.sql) asked registration_blocker() without
-- the windows and with the overrides their place was given; one who may not
-- take a seat keeps their place, and each seat given to someone behind them
-- records a waitlist.passed_over naming the rule they failed.
create or replace function promote_waitlist(c bigint) returns void
language plpgsql as $$
declare
    free integer;
    term bigint;
    heads bigint[];
    promoted integer;
    base bigint;
    actor text := current_setting('enrollment.actor', true);
    entry record;
    blocker text;
    passed_students bigint[] := '{}';
    passed_rules text[] := '{}';
begin
    select seats_left(x.capacity, x.enrolled), x.term_id into free, term
    from courses x where x.id = c for no key update;
    if not found or free <= 0 then
        return;
    end if;
    if term is not null then
        for entry in
            select q.student_id, q.overrides from course_waitlist q where q.course_id = c order by q.seq
        loop
            exit when free <= 0;
            perform 1 from students s where s.id = entry.student_id for no key update;
            continue when not found;
            select b.rule into blocker
            from registration_blocker(entry.student_id, c, entry.overrides, false) b;
            if blocker is not null then
                passed_students := passed_students || entry.student_id;
                passed_rules := passed_rules || blocker;
                continue;
            end if;
            perform record_event('waitlist.passed_over', p.student, c,
                                 jsonb_build_object('reason', p.rule))
            from unnest(passed_students, passed_rules) with ordinality as p (student, rule, k)
            order by p.k;
            perform record_event('waitlist.left', entry.student_id, c, '{"reason": "promoted"}');
            perform record_event('enrollment.created', entry.student_id, c,
                                 '{"via": "waitlist"}'::jsonb || overrides_data(entry.overrides));
            perform set_config('enrollment.promoting', 'on', true);
            delete from course_waitlist q where q.course_id = c and q.student_id = entry.student_id;
            insert into student_courses (student_id, course_id, overrides)
            values (entry.student_id, c, entry.overrides);
            perform set_config('enrollment.promoting', '', true);
            free := free - 1;
        end loop;
        return;
    end if;

    -- The head of the queue, as many as there are seats left (a null limit:
    -- all of it).
    select array_agg(h.student_id order by h.seq) into heads
    from (
        select w.student_id, w.seq
        from course_waitlist w
        join students s on s.id = w.student_id
        where w.course_id = c
        order by w.seq
        limit free
    ) h;
    promoted := coalesce(array_length(heads, 1), 0);
    if promoted = 0 then
        return;
    end if;

    -- Their events, as record_event() would number them one by one: for each
    -- student in queue order, waitlist.left then enrollment.created.
    base := reserve_events(2 * promoted, array[c]);
    insert into events (id, type, actor, student_id, course_id, data)
    select base + 2 * (h.k - 1) + e.k,
           e.type,
           case when actor is null then 'sql:' || session_user else nullif(actor, '') end,
           h.student_id,
           c,
           e.data
    from unnest(heads) with ordinality as h (student_id, k)
    cross join (
        values (1, 'waitlist.left', '{"reason": "promoted"}'::jsonb),
               (2, 'enrollment.created', '{"via": "waitlist"}'::jsonb)
    ) as e (k, type, data)
    order by h.k, e.k;

    -- The triggers count both statements; they record no event meanwhile.
    perform set_config('enrollment.promoting', 'on', true);
    delete from course_waitlist w
    using unnest(heads) as h (student_id)
    where w.course_id = c and w.student_id = h.student_id;
    insert into student_courses (student_id, course_id)
    select h.student_id, c
    from unnest(heads) with ordinality as h (student_id, k)
    order by h.k;
    perform set_config('enrollment.promoting', '', true);
end;
$$;
