-- The batch functions, one statement each for POST /enrollments/batch,
-- /students/batch and /courses/batch (sql/batches.sql): items applied in
-- order, one row per item.

-- batch_enroll: POST /enrollments/batch, items applied in order, one row
-- per item (item: its place, 1-based). Item n drops when drops[n], else
-- enrolls; its student is student_ids[n] or the one with student_emails[n]
-- or with student_sourced_ids[n], its course course_ids[n] or the one with
-- course_codes[n] in term course_terms[n] (null: the courses without a
-- term) or with course_sourced_ids[n]; waitlists[n] as the single request's
-- "waitlist", overrides[n] its "override" (comma-separated), sourced_ids[n]
-- its "sourced_id" (a null array: none).
--
-- It decides nothing itself: each run of consecutive enroll items into the
-- same course (by the same id, or the same code and term) goes to
-- enroll_run() in one call, each drop to drop_enrollment(), so a batch
-- applies exactly the rules of the single requests
-- (sql/functions/enrollments.sql). A drop between two runs into one course
-- ends the first: the second sees its promotion.
create or replace function batch_enroll(
    drops boolean[],
    student_ids bigint[],
    student_emails text[],
    student_sourced_ids text[],
    course_ids bigint[],
    course_terms bigint[],
    course_codes text[],
    course_sourced_ids text[],
    waitlists boolean[],
    overrides text[],
    sourced_ids text[],
    actor text
)
returns table (
    item bigint,
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
language plpgsql as $$
#variable_conflict use_column
declare
    items integer := coalesce(array_length(drops, 1), 0);
    first integer := 1;
    last integer;
    run_students bigint[];
    students bigint[];
    courses_found bigint[];
begin
    -- Students named by email or sourced_id: their ids (null: no one has
    -- it), looked up without a lock; enroll_run() locks them by id after the
    -- course.
    students := student_ids;
    if array_position(students, null) is not null then
        select array_agg(coalesce(
                   t.sid,
                   (select s.id from students s where fold_case(s.email) = fold_case(t.email)),
                   (select s.id from students s where s.sourced_id = t.named)
               ) order by t.k)
        into students
        from unnest(student_ids, student_emails, student_sourced_ids)
            with ordinality as t (sid, email, named, k);
    end if;
    courses_found := array(
        select coalesce(
                   t.cid,
                   (select x.id from courses x
                    where fold_case(x.code) = fold_case(t.code)
                      and coalesce(x.term_id, 0) = coalesce(t.term, 0)),
                   (select x.id from courses x where x.sourced_id = t.named)
               )
        from unnest(course_ids, course_terms, course_codes, course_sourced_ids)
            with ordinality as t (cid, term, code, named, k)
        order by t.k
    );
    -- Every course of the batch's feed locks first, before any change
    -- (lock_courses, events.sql), with those a drop in a term may promote
    -- its student in; a code that names no course locks nothing.
    perform lock_courses(courses_found || array(
        select w.course_id
        from unnest(drops, students, courses_found) as t (d, sid, cid)
        join courses x on x.id = t.cid and x.term_id is not null
        join course_waitlist w on w.student_id = t.sid
        join courses y on y.id = w.course_id and y.term_id = x.term_id
        where t.d
    ));
    -- The registration locks of the students going into courses of a term,
    -- in id order, so that two batches never wait for each other in a circle.
    perform 1 from students s
    where s.id in (
        select t.sid
        from unnest(drops, students, courses_found) as t (d, sid, cid)
        join courses x on x.id = t.cid and x.term_id is not null
        where not t.d
    )
    order by s.id
    for no key update;
    while first <= items loop
        if drops[first] then
            return query
            select first::bigint, d.outcome, null::text[], d.student_id, d.course_id,
                   null::text, null::text, null::integer, null::integer, null::integer,
                   null::integer, null::timestamptz, null::bigint, null::numeric, null::jsonb,
                   null::text[], null::timestamptz, null::timestamptz, null::bigint, null::text
            from drop_enrollment(students[first], student_emails[first], courses_found[first],
                                 course_terms[first], course_codes[first], overrides[first],
                                 actor) d;
            first := first + 1;
            continue;
        end if;
        last := first;
        while last < items and not drops[last + 1]
              and coalesce(case when course_ids[first] is not null
                                then course_ids[last + 1] = course_ids[first]
                                when course_sourced_ids[first] is not null
                                then course_sourced_ids[last + 1] = course_sourced_ids[first]
                                else course_ids[last + 1] is null
                                     and course_codes[last + 1] = course_codes[first]
                                     and course_terms[last + 1] is not distinct from
                                         course_terms[first] end,
                           false)
        loop
            last := last + 1;
        end loop;
        -- A course named by sourced_id goes by the id found (null: none).
        return query
        select (first - 1 + r.k)::bigint, r.outcome, r.about, r.student_id, r.course_id, r.code,
               r.title, r.capacity, r.waitlist_capacity, r.enrolled, r.waitlisted, r.created_at,
               r.term_id, r.credits, r.meetings, r.prerequisites, r.enrolled_at,
               r.waitlisted_at, r.queue_position, r.sourced_id
        from enroll_run(coalesce(course_ids[first],
                                 case when course_sourced_ids[first] is not null
                                      then courses_found[first] end),
                        course_terms[first], course_codes[first],
                        students[first:last], waitlists[first:last], overrides[first:last],
                        sourced_ids[first:last], actor) r;
        first := last + 1;
    end loop;
end;
$$;

-- batch_enroll as the release before sourced_ids called it (a rolling
-- deploy's old instances). A later release drops it.
create or replace function batch_enroll(
    drops boolean[],
    student_ids bigint[],
    student_emails text[],
    course_ids bigint[],
    course_terms bigint[],
    course_codes text[],
    waitlists boolean[],
    overrides text[],
    actor text
)
returns table (
    item bigint,
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
    select b.item, b.outcome, b.about, b.student_id, b.course_id, b.code, b.title, b.capacity,
           b.waitlist_capacity, b.enrolled, b.waitlisted, b.created_at, b.term_id, b.credits,
           b.meetings, b.prerequisites, b.enrolled_at, b.waitlisted_at, b.queue_position
    from batch_enroll(drops, student_ids, student_emails, null::text[], course_ids, course_terms,
                      course_codes, null::text[], waitlists, overrides, null::text[], actor) b
$$;

-- batch_enroll as the release before terms called it (a rolling deploy's
-- old instances). A later release drops it.
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
language sql as $$
    select b.item, b.outcome, b.student_id, b.course_id, b.code, b.title, b.capacity,
           b.waitlist_capacity, b.enrolled, b.waitlisted, b.created_at, b.enrolled_at,
           b.waitlisted_at, b.queue_position
    from batch_enroll(drops, student_ids, student_emails, course_ids,
                      array_fill(null::bigint, array[cardinality(drops)]), course_codes, waitlists,
                      array_fill(null::text, array[cardinality(drops)]), actor) b
$$;

-- Create students, or update one. An item without a sourced_id renames the
-- student with its email (any letter case: students_email_key, the unique
-- index of migration 0004 on fold_case(email), decides what is the same
-- email; the stored email is kept). An item with one (sourced_ids[i]; a
-- null array: none) matches the student with that sourced_id and sets their
-- name and email, or creates one with it; its email is then only unique:
-- another student's is email-taken, and nothing of the item changes.
-- Outcomes: created, updated, unchanged, email-taken. A student created by a
-- concurrent transaction after the lookup makes the insert do nothing (ON
-- CONFLICT waits for that transaction); the lookup then finds them. The
-- check for another student's email reads under no lock: one taking it
-- concurrently before the update makes the unique index refuse the update,
-- the whole statement with it.
create or replace function batch_students(
    names text[],
    emails text[],
    sourced_ids text[],
    actor text
)
returns table (
    item bigint,
    outcome text,
    id bigint,
    name text,
    email text,
    created_at timestamptz,
    sourced_id text
)
language plpgsql as $$
#variable_conflict use_column
declare
    it record;
begin
    perform set_config('enrollment.actor', actor, true);
    for it in
        select *
        from unnest(names, emails, sourced_ids) with ordinality as t (new_name, new_email, named, n)
        order by n
    loop
        item := it.n;
        loop
            if it.named is null then
                select s.id, s.name, s.email, s.created_at, s.sourced_id
                into id, name, email, created_at, sourced_id
                from students s
                where fold_case(s.email) = fold_case(it.new_email)
                for no key update;
            else
                select s.id, s.name, s.email, s.created_at, s.sourced_id
                into id, name, email, created_at, sourced_id
                from students s
                where s.sourced_id = it.named
                for no key update;
            end if;
            if found then
                if name = it.new_name and (it.named is null or email = it.new_email) then
                    outcome := 'unchanged';
                elsif it.named is not null and exists (
                    select from students s
                    where fold_case(s.email) = fold_case(it.new_email) and s.id <> batch_students.id
                ) then
                    outcome := 'email-taken';
                else
                    update students s
                    set name = it.new_name,
                        email = case when it.named is null then s.email else it.new_email end
                    where s.id = batch_students.id
                    returning s.name, s.email into name, email;
                    outcome := 'updated';
                end if;
                exit;
            end if;
            insert into students (name, email, sourced_id)
            values (it.new_name, it.new_email, sourced_id_or_new(it.named))
            on conflict do nothing
            returning students.id, students.name, students.email, students.created_at,
                      students.sourced_id
            into id, name, email, created_at, sourced_id;
            if found then
                perform lock_courses(array[id], created => true);
                outcome := 'created';
                exit;
            end if;
            -- Not the sourced_id (the lookup finds it now): the email.
            if it.named is not null
               and not exists (select from students s where s.sourced_id = it.named) then
                outcome := 'email-taken';
                exit;
            end if;
        end loop;
        return next;
    end loop;
end;
$$;

-- batch_students as the release before sourced_ids called it (a rolling
-- deploy's old instances). A later release drops it.
create or replace function batch_students(names text[], emails text[], actor text)
returns table (
    item bigint,
    outcome text,
    id bigint,
    name text,
    email text,
    created_at timestamptz
)
language sql as $$
    select b.item, b.outcome, b.id, b.name, b.email, b.created_at
    from batch_students(names, emails, null::text[], actor) b
$$;

-- Create courses, or update one. An item without a sourced_id updates the
-- course with that code (any letter case; the stored code is kept) in that
-- term: term_ids[i], null for the courses without a term. An item with one
-- (sourced_ids[i]; a null array: none) matches the course with that
-- sourced_id and sets its code and term too, or creates one with it; the
-- code is then only unique in its term: another course's is code-taken,
-- and a course with students enrolled or waiting cannot change its term
-- (course-not-empty, as PATCH /courses/{id}); nothing of the item changes.
-- A term that does not exist is the item's unknown-term,
-- and nothing changes; the term found is locked (key share) until the
-- commit, so it cannot go before the course is in it. set_capacities[i]
-- says whether capacities[i] is to be applied (it may set null: no limit);
-- a null waitlist_capacities[i], credit_amounts[i], meeting_lists[i] (a
-- JSON array of meetings, checked by the service) or prerequisite_lists[i]
-- (a JSON array of codes) keeps the stored one, or takes the column's
-- default on a create. As PATCH /courses/{id}: lowering capacity below the
-- enrollments is capacity-below-enrollments, lowering waitlist_capacity
-- below the students waiting is waitlist-capacity-below-waiting (checked in
-- that order, as the check constraints are), and nothing changes; raising
-- capacity promotes (courses_promote_on_capacity), and so may a change of
-- credits, meetings or prerequisites (the triggers of registration.sql):
-- the course returned is read after them. Other outcomes: created, updated,
-- unchanged. The check for another course's code reads under no lock, as
-- batch_students() does for emails.
create or replace function batch_courses(
    codes text[],
    titles text[],
    set_capacities boolean[],
    capacities integer[],
    waitlist_capacities integer[],
    term_ids bigint[],
    credit_amounts numeric[],
    meeting_lists jsonb[],
    prerequisite_lists jsonb[],
    sourced_ids text[],
    actor text
)
returns table (
    item bigint,
    outcome text,
    id bigint,
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
    sourced_id text
)
language plpgsql as $$
#variable_conflict use_column
declare
    it record;
    ruled bigint;
    new_capacity integer;
    new_waitlist integer;
    new_credits numeric;
    new_meetings jsonb;
    new_prerequisites text[];
begin
    perform set_config('enrollment.actor', actor, true);
    -- The feed locks of the courses it updates, first, in one call
    -- (lock_courses, events.sql); then, for those whose credits, meetings or
    -- prerequisites an item gives, which may promote students waiting here
    -- or elsewhere, those lock_course_rules() (registration.sql) adds.
    perform lock_courses(array(
        select x.id from courses x
        where (fold_case(x.code), coalesce(x.term_id, 0)) in (
            select fold_case(t.c), coalesce(t.term, 0)
            from unnest(codes, term_ids, sourced_ids) as t (c, term, named)
            where t.named is null
        )
        union
        select x.id from courses x
        where x.sourced_id in (select t.named from unnest(sourced_ids) as t (named))
    ));
    for ruled in
        select x.id from courses x
        where (fold_case(x.code), coalesce(x.term_id, 0)) in (
            select fold_case(t.c), coalesce(t.term, 0)
            from unnest(codes, term_ids, credit_amounts, meeting_lists, prerequisite_lists,
                        sourced_ids)
                as t (c, term, cr, m, p, named)
            where t.named is null and (t.cr is not null or t.m is not null or t.p is not null)
        )
        union
        select x.id from courses x
        where x.sourced_id in (
            select t.named
            from unnest(credit_amounts, meeting_lists, prerequisite_lists, sourced_ids)
                as t (cr, m, p, named)
            where t.cr is not null or t.m is not null or t.p is not null
        )
        order by 1
    loop
        perform lock_course_rules(ruled);
    end loop;
    for it in
        select *
        from unnest(codes, titles, set_capacities, capacities, waitlist_capacities, term_ids,
                    credit_amounts, meeting_lists, prerequisite_lists, sourced_ids)
            with ordinality as t (new_code, new_title, set_capacity, new_cap, new_wait, new_term,
                                  new_credits, new_meetings, new_prerequisites, named, n)
        order by n
    loop
        item := it.n;
        if it.new_term is not null then
            perform from terms x where x.id = it.new_term for key share;
            if not found then
                outcome := 'unknown-term';
                select null, null, null, null, null, null, null, null, null, null, null, null, null
                into id, code, title, capacity, waitlist_capacity, enrolled, waitlisted,
                     created_at, term_id, credits, meetings, prerequisites, sourced_id;
                return next;
                continue;
            end if;
        end if;
        new_prerequisites := case when it.new_prerequisites is not null then array(
            select p.c from jsonb_array_elements_text(it.new_prerequisites) with ordinality as p (c, k)
            order by p.k
        ) end;
        loop
            if it.named is null then
                select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
                       x.waitlisted, x.created_at, x.term_id, x.credits, x.meetings,
                       x.prerequisites, x.sourced_id
                into id, code, title, capacity, waitlist_capacity, enrolled, waitlisted,
                     created_at, term_id, credits, meetings, prerequisites, sourced_id
                from courses x
                where fold_case(x.code) = fold_case(it.new_code)
                  and coalesce(x.term_id, 0) = coalesce(it.new_term, 0)
                for no key update;
            else
                select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
                       x.waitlisted, x.created_at, x.term_id, x.credits, x.meetings,
                       x.prerequisites, x.sourced_id
                into id, code, title, capacity, waitlist_capacity, enrolled, waitlisted,
                     created_at, term_id, credits, meetings, prerequisites, sourced_id
                from courses x
                where x.sourced_id = it.named
                for no key update;
            end if;
            if found then
                new_capacity := case when it.set_capacity then it.new_cap else capacity end;
                new_waitlist := coalesce(it.new_wait, waitlist_capacity);
                new_credits := coalesce(it.new_credits, credits);
                new_meetings := coalesce(it.new_meetings, meetings);
                new_prerequisites := coalesce(new_prerequisites, prerequisites);
                if it.named is not null and exists (
                    select from courses x
                    where fold_case(x.code) = fold_case(it.new_code)
                      and coalesce(x.term_id, 0) = coalesce(it.new_term, 0)
                      and x.id <> batch_courses.id
                ) then
                    outcome := 'code-taken';
                elsif it.named is not null and term_id is distinct from it.new_term
                      and (enrolled > 0 or waitlisted > 0) then
                    outcome := 'course-not-empty';
                elsif new_capacity < enrolled then
                    outcome := 'capacity-below-enrollments';
                elsif new_waitlist < waitlisted then
                    outcome := 'waitlist-capacity-below-waiting';
                elsif title = it.new_title and new_capacity is not distinct from capacity
                        and new_waitlist = waitlist_capacity and new_credits = credits
                        and new_meetings = meetings and new_prerequisites = prerequisites
                        and (it.named is null
                             or (code = it.new_code and term_id is not distinct from it.new_term))
                        then
                    outcome := 'unchanged';
                else
                    update courses x
                    set code = case when it.named is null then x.code else it.new_code end,
                        term_id = case when it.named is null then x.term_id else it.new_term end,
                        title = it.new_title, capacity = new_capacity,
                        waitlist_capacity = new_waitlist, credits = new_credits,
                        meetings = new_meetings, prerequisites = new_prerequisites
                    where x.id = batch_courses.id;
                    -- Read after the promotions the update's triggers made.
                    select x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
                           x.waitlisted, x.term_id, x.credits, x.meetings, x.prerequisites
                    into code, title, capacity, waitlist_capacity, enrolled, waitlisted, term_id,
                         credits, meetings, prerequisites
                    from courses x where x.id = batch_courses.id;
                    outcome := 'updated';
                end if;
                exit;
            end if;
            insert into courses (code, title, capacity, waitlist_capacity, term_id, credits,
                                 meetings, prerequisites, sourced_id)
            values (it.new_code, it.new_title, it.new_cap, coalesce(it.new_wait, 0), it.new_term,
                    coalesce(it.new_credits, 0), coalesce(it.new_meetings, '[]'),
                    coalesce(new_prerequisites, '{}'), sourced_id_or_new(it.named))
            on conflict do nothing
            returning courses.id, courses.code, courses.title, courses.capacity,
                      courses.waitlist_capacity, courses.enrolled, courses.waitlisted,
                      courses.created_at, courses.term_id, courses.credits, courses.meetings,
                      courses.prerequisites, courses.sourced_id
            into id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at,
                 term_id, credits, meetings, prerequisites, sourced_id;
            if found then
                perform lock_courses(array[id], created => true);
                outcome := 'created';
                exit;
            end if;
            -- Not the sourced_id (the lookup finds it now): the code.
            if it.named is not null
               and not exists (select from courses x where x.sourced_id = it.named) then
                outcome := 'code-taken';
                exit;
            end if;
        end loop;
        return next;
    end loop;
end;
$$;

-- batch_courses as the release before sourced_ids called it (a rolling
-- deploy's old instances). A later release drops it.
create or replace function batch_courses(
    codes text[],
    titles text[],
    set_capacities boolean[],
    capacities integer[],
    waitlist_capacities integer[],
    term_ids bigint[],
    credit_amounts numeric[],
    meeting_lists jsonb[],
    prerequisite_lists jsonb[],
    actor text
)
returns table (
    item bigint,
    outcome text,
    id bigint,
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
    prerequisites text[]
)
language sql as $$
    select b.item, b.outcome, b.id, b.code, b.title, b.capacity, b.waitlist_capacity,
           b.enrolled, b.waitlisted, b.created_at, b.term_id, b.credits, b.meetings,
           b.prerequisites
    from batch_courses(codes, titles, set_capacities, capacities, waitlist_capacities, term_ids,
                       credit_amounts, meeting_lists, prerequisite_lists, null::text[], actor) b
$$;

-- The signature before terms (the release of migration 0015), kept for one
-- release: instances of that release call it during a rolling deploy. It
-- creates or updates among the courses without a term. A later release
-- drops it in a migration (docs/development.md, "Functions and triggers").
create or replace function batch_courses(
    codes text[],
    titles text[],
    set_capacities boolean[],
    capacities integer[],
    waitlist_capacities integer[],
    actor text
)
returns table (
    item bigint,
    outcome text,
    id bigint,
    code text,
    title text,
    capacity integer,
    waitlist_capacity integer,
    enrolled integer,
    waitlisted integer,
    created_at timestamptz
)
language sql as $$
    select b.item, b.outcome, b.id, b.code, b.title, b.capacity, b.waitlist_capacity,
           b.enrolled, b.waitlisted, b.created_at
    from batch_courses(codes, titles, set_capacities, capacities, waitlist_capacities,
                       null::bigint[], null::numeric[], null::jsonb[], null::jsonb[], actor) b
$$;
