-- Undo 0010: 0005's and 0006's row triggers on inserts into student_courses
-- come back, word for word (their functions were kept), and batch_enroll is
-- 0007's again. No data changes.

set local lock_timeout = '5s';

drop trigger student_courses_counted_inserted on student_courses;
drop trigger student_courses_audit on student_courses;
drop function student_courses_inserted();

-- As in 0005_waitlists.
create trigger student_courses_counted_insert
    after insert on student_courses
    for each row execute function student_courses_count_insert();

-- As in 0006_events.
create trigger student_courses_audit
    after insert or delete on student_courses
    for each row execute function student_courses_record();

-- As in 0007_batches, word for word.
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

