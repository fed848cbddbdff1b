-- Batches: many enrollments, students or courses in one statement.
-- depends: 0006_events
--
-- Each function takes a batch's items as parallel arrays (item i is the i-th
-- element of every array) and applies them one after another, in order, in
-- one transaction, returning one row per item: what happened to it (an
-- outcome slug, as the service answers it) and the row it concerns. Every
-- item is checked under the locks the single statements take, in the same
-- order, so a refusal (a full course, a capacity below the enrollments) is
-- an outcome row rather than an error: no item undoes or blocks another, and
-- no subtransaction is needed per item. The triggers of 0005 and 0006 do
-- what they do for single statements (counting, promoting, recording each
-- change's event with the actor set here).
--
-- A batch holds the locks of all its items until it commits: two batches
-- locking the same courses in opposite orders deadlock, and the service runs
-- the whole statement again (nothing of the aborted one is left).

set local lock_timeout = '5s';

-- Enroll or drop, item by item. drops[i] true: drop (as DELETE
-- /students/{id}/courses/{id}), else enroll, waiting when waitlists[i] asks
-- (as POST /students/{id}/courses). The student is named by student_ids[i]
-- or, when that is null, student_emails[i] (any letter case); the course by
-- course_ids[i] or course_codes[i].
--
-- Enrolling locks the course row first (FOR NO KEY UPDATE, as the enroll
-- statement does), so its counts are current and nothing else changes its
-- seats or queue before the batch commits; then the student row FOR KEY
-- SHARE, so a concurrent delete of the student waits for the batch rather
-- than turning the insert into a foreign key error. A drop takes the locks
-- the delete statement takes (the enrollment, then the course in its
-- trigger).
--
-- Outcomes: enrolled, already-enrolled, waitlisted, already-waiting,
-- course-full, waitlist-full, dropped, not-enrolled, student-not-found,
-- course-not-found. The course columns are the course as that item leaves
-- it (null when it does not apply); queue_position counts the entries ahead.
create function batch_enroll(
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
begin
    perform set_config('enrollment.actor', actor, true);
    for it in
        select *
        from unnest(drops, student_ids, student_emails, course_ids, course_codes, waitlists)
            with ordinality as t (is_drop, sid, email, cid, ccode, wait, n)
        order by n
    loop
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

-- Create students, or rename the student with that email (any letter case:
-- the unique index of 0004 decides what is the same email). Outcomes:
-- created, updated, unchanged. The email of an existing student is kept as
-- stored. A student created by a concurrent transaction after the lookup
-- makes the insert do nothing (ON CONFLICT waits for that transaction);
-- the lookup then finds them.
create function batch_students(names text[], emails text[], actor text)
returns table (
    item bigint,
    outcome text,
    id bigint,
    name text,
    email text,
    created_at timestamptz
)
language plpgsql as $$
#variable_conflict use_column
declare
    it record;
begin
    perform set_config('enrollment.actor', actor, true);
    for it in
        select * from unnest(names, emails) with ordinality as t (new_name, new_email, n)
        order by n
    loop
        item := it.n;
        loop
            select s.id, s.name, s.email, s.created_at into id, name, email, created_at
            from students s
            where fold_case(s.email) = fold_case(it.new_email)
            for no key update;
            if found then
                if name = it.new_name then
                    outcome := 'unchanged';
                else
                    update students s set name = it.new_name where s.id = batch_students.id
                    returning s.name into name;
                    outcome := 'updated';
                end if;
                exit;
            end if;
            insert into students (name, email) values (it.new_name, it.new_email)
            on conflict do nothing
            returning students.id, students.name, students.email, students.created_at
            into id, name, email, created_at;
            if found then
                outcome := 'created';
                exit;
            end if;
        end loop;
        return next;
    end loop;
end;
$$;

-- Create courses, or update the course with that code (any letter case; the
-- stored code is kept). set_capacities[i] says whether capacities[i] is to
-- be applied (it may set null: no limit); a null waitlist_capacities[i]
-- keeps the stored one. As PATCH /courses/{id}: lowering capacity below
-- the enrollments is capacity-below-enrollments, lowering
-- waitlist_capacity below the students waiting is
-- waitlist-capacity-below-waiting (checked in that order, as the check
-- constraints are), and nothing changes; raising capacity promotes
-- (courses_promote_on_capacity) and the course returned is read after it.
-- Other outcomes: created, updated, unchanged.
create function batch_courses(
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
language plpgsql as $$
#variable_conflict use_column
declare
    it record;
    new_capacity integer;
    new_waitlist integer;
begin
    perform set_config('enrollment.actor', actor, true);
    for it in
        select *
        from unnest(codes, titles, set_capacities, capacities, waitlist_capacities)
            with ordinality as t (new_code, new_title, set_capacity, new_cap, new_wait, n)
        order by n
    loop
        item := it.n;
        loop
            select x.id, x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
                   x.waitlisted, x.created_at
            into id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at
            from courses x
            where fold_case(x.code) = fold_case(it.new_code)
            for no key update;
            if found then
                new_capacity := case when it.set_capacity then it.new_cap else capacity end;
                new_waitlist := coalesce(it.new_wait, waitlist_capacity);
                if new_capacity < enrolled then
                    outcome := 'capacity-below-enrollments';
                elsif new_waitlist < waitlisted then
                    outcome := 'waitlist-capacity-below-waiting';
                elsif title = it.new_title and new_capacity is not distinct from capacity
                        and new_waitlist = waitlist_capacity then
                    outcome := 'unchanged';
                else
                    update courses x
                    set title = it.new_title, capacity = new_capacity,
                        waitlist_capacity = new_waitlist
                    where x.id = batch_courses.id;
                    -- Read after the promotions the update's trigger made.
                    select x.code, x.title, x.capacity, x.waitlist_capacity, x.enrolled,
                           x.waitlisted
                    into code, title, capacity, waitlist_capacity, enrolled, waitlisted
                    from courses x where x.id = batch_courses.id;
                    outcome := 'updated';
                end if;
                exit;
            end if;
            insert into courses (code, title, capacity, waitlist_capacity)
            values (it.new_code, it.new_title, it.new_cap, coalesce(it.new_wait, 0))
            on conflict do nothing
            returning courses.id, courses.code, courses.title, courses.capacity,
                      courses.waitlist_capacity, courses.enrolled, courses.waitlisted,
                      courses.created_at
            into id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at;
            if found then
                outcome := 'created';
                exit;
            end if;
        end loop;
        return next;
    end loop;
end;
$$;
