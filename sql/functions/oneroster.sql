-- OneRoster 1.2 (migration 0018, docs/oneroster.md): when a record last
-- changed (its dateLastModified) and what was deleted (tombstones, read by a
-- delta sync as status `tobedeleted`).

-- students_modified, courses_modified, terms_modified: modified_at moves
-- when a field a OneRoster record shows changes. The triggers name those columns, so the seat
-- counters' updates of a course (every enrollment) do not fire them, and
-- the WHEN skips an update that sets the same values.
create or replace function record_modified() returns trigger
language plpgsql as $$
begin
    new.modified_at := now();
    return new;
end;
$$;

create or replace trigger students_modified
    before update of name, email, sourced_id on students
    for each row
    when ((old.name, old.email, old.sourced_id) is distinct from (new.name, new.email, new.sourced_id))
    execute function record_modified();

create or replace trigger courses_modified
    before update of code, title, term_id, sourced_id on courses
    for each row
    when ((old.code, old.title, old.term_id, old.sourced_id)
          is distinct from (new.code, new.title, new.term_id, new.sourced_id))
    execute function record_modified();

create or replace trigger terms_modified
    before update of code, title, starts_on, ends_on, sourced_id on terms
    for each row
    when ((old.code, old.title, old.starts_on, old.ends_on, old.sourced_id)
          is distinct from (new.code, new.title, new.starts_on, new.ends_on, new.sourced_id))
    execute function record_modified();

-- *_tombstone: one row per deleted record, the kind from the trigger's
-- argument, set-based over the statement's deleted rows (a student's
-- deletion cascades to their enrollments in one statement per student).
create or replace function record_tombstones() returns trigger
language plpgsql as $$
begin
    insert into tombstones (kind, sourced_id)
    select tg_argv[0], gone.sourced_id
    from gone
    where gone.sourced_id is not null;
    return null;
end;
$$;

create or replace trigger students_tombstone
    after delete on students
    referencing old table as gone
    for each statement execute function record_tombstones('student');

create or replace trigger courses_tombstone
    after delete on courses
    referencing old table as gone
    for each statement execute function record_tombstones('course');

create or replace trigger terms_tombstone
    after delete on terms
    referencing old table as gone
    for each statement execute function record_tombstones('term');

create or replace trigger student_courses_tombstone
    after delete on student_courses
    referencing old table as gone
    for each statement execute function record_tombstones('enrollment');

-- The provider (service/oneroster/, sql/oneroster.sql): each record type of
-- the binding built from its row, here and nowhere else, so that what a
-- filter compares (oneroster_match()) is what a client reads. Property
-- names and order as the binding's schemas (UserDType, AcademicSessionDType,
-- ClassDType, CourseDType, EnrollmentDType, OrgDType) have them; json, not
-- jsonb, which would reorder them. Every one is a single expression
-- without a subquery, so PostgreSQL inlines it into the statement that
-- calls it instead of calling a function per row (not STRICT, for the same
-- reason: see fold_case(), text.sql). `base` is what every href starts with:
-- ONEROSTER_BASE_URL and the provider's prefix, with a trailing slash.

-- oneroster_time(): a dateLastModified as every record shows it: UTC, six
-- decimals, Z. Fixed width, so that its text order is time order: filters
-- compare text (service/oneroster/filters.py writes a client's timestamp
-- in this form).
create or replace function oneroster_time(at timestamptz) returns text
    language sql
    stable
    parallel safe
    return to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

-- oneroster_segment(): a sourcedId percent-encoded as one segment of a path
-- (RFC 3986: every byte outside the unreserved characters). Called by
-- oneroster_ref() only for a sourcedId that needs it: a UUID does not.
create or replace function oneroster_segment(value text) returns text
    language sql
    stable
    parallel safe
    return (
        select string_agg(
            case when c ~ '^[A-Za-z0-9._~-]$' then c
                 else regexp_replace(upper(encode(convert_to(c, 'UTF8'), 'hex')), '(..)', '%\1', 'g')
            end, '' order by n)
        from regexp_split_to_table(value, '') with ordinality as s (c, n)
    );

-- oneroster_ref(): a GUIDRef ({href, sourcedId, type}) to the record of
-- `collection` with that sourcedId.
create or replace function oneroster_ref(base text, collection text, sourced_id text, type text)
    returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'href', base || collection || '/'
            || case when sourced_id ~ '^[A-Za-z0-9._~-]*$' then sourced_id
                    else oneroster_segment(sourced_id) end,
        'sourcedId', sourced_id,
        'type', type);

-- oneroster_user(): a student as a user of role student in the school.
-- familyName is the name's last word, givenName what comes before it (a
-- name of one word: givenName is empty); words are split at spaces (U+0020:
-- no locale decides). username is the email. Strings, not a regular
-- expression: a fifth of the cost, for every record a filter reads.
create or replace function oneroster_user(s students, base text, school text) returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'sourcedId', s.sourced_id,
        'status', 'active',
        'dateLastModified', oneroster_time(s.modified_at),
        'username', s.email,
        'userIds', json_build_array(),
        'enabledUser', 'true',
        'givenName', rtrim(left(btrim(s.name),
                                - char_length(reverse(split_part(reverse(btrim(s.name)), ' ', 1))))),
        'familyName', reverse(split_part(reverse(btrim(s.name)), ' ', 1)),
        'roles', json_build_array(json_build_object(
            'roleType', 'primary',
            'role', 'student',
            'org', oneroster_ref(base, 'orgs', school, 'org'))),
        'email', s.email);

-- oneroster_academic_session(): a term as an academic session of type
-- term; schoolYear is the year it ends in.
create or replace function oneroster_academic_session(t terms) returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'sourcedId', t.sourced_id,
        'status', 'active',
        'dateLastModified', oneroster_time(t.modified_at),
        'title', t.title,
        'startDate', to_char(t.starts_on, 'YYYY-MM-DD'),
        'endDate', to_char(t.ends_on, 'YYYY-MM-DD'),
        'type', 'term',
        'schoolYear', to_char(t.ends_on, 'YYYY'));

-- oneroster_class(): a course as a class of itself (the OneRoster course of
-- the same sourcedId), in its term (`term`: the term's sourcedId, null for
-- a course in none: then `terms` is empty).
create or replace function oneroster_class(c courses, term text, base text, school text) returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'sourcedId', c.sourced_id,
        'status', 'active',
        'dateLastModified', oneroster_time(c.modified_at),
        'title', c.title,
        'classCode', c.code,
        'classType', 'scheduled',
        'course', oneroster_ref(base, 'courses', c.sourced_id, 'course'),
        'school', oneroster_ref(base, 'orgs', school, 'org'),
        'terms', case when term is null then json_build_array()
                      else json_build_array(oneroster_ref(base, 'academicSessions', term, 'academicSession'))
                 end);

-- oneroster_course(): a course as a OneRoster course of the school.
create or replace function oneroster_course(c courses, base text, school text) returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'sourcedId', c.sourced_id,
        'status', 'active',
        'dateLastModified', oneroster_time(c.modified_at),
        'title', c.title,
        'courseCode', c.code,
        'org', oneroster_ref(base, 'orgs', school, 'org'));

-- oneroster_enrollment(): an enrollment as a student's in a class;
-- `student` and `course` are their sourcedIds. It never changes once made:
-- its dateLastModified is when it was made.
create or replace function oneroster_enrollment(
    e student_courses, student text, course text, base text, school text
) returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'sourcedId', e.sourced_id,
        'status', 'active',
        'dateLastModified', oneroster_time(e.enrolled_at),
        'user', oneroster_ref(base, 'users', student, 'user'),
        'class', oneroster_ref(base, 'classes', course, 'class'),
        'school', oneroster_ref(base, 'orgs', school, 'org'),
        'role', 'student',
        'primary', 'false');

-- oneroster_org(): the one org, the school, from the settings
-- (ONEROSTER_SCHOOL_ID, ONEROSTER_SCHOOL_NAME).
create or replace function oneroster_org(sourced_id text, name text, modified_at timestamptz)
    returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'sourcedId', sourced_id,
        'status', 'active',
        'dateLastModified', oneroster_time(modified_at),
        'name', name,
        'type', 'school',
        'identifier', sourced_id);

-- oneroster_tombstone(): a deleted record, of any type: its sourcedId,
-- status tobedeleted, and when it was deleted. Nothing else: no personal
-- field survives a deletion.
create or replace function oneroster_tombstone(sourced_id text, deleted_at timestamptz) returns json
    language sql
    stable
    parallel safe
    return json_build_object(
        'sourcedId', sourced_id,
        'status', 'tobedeleted',
        'dateLastModified', oneroster_time(deleted_at));

-- oneroster_match(): whether a record passes a filter's predicates, given as
-- parallel arrays (field, operator, value; service/oneroster/filters.py
-- parsed them), all of them (any_of false) or any. A field may name a
-- GUIDRef's sourcedId (`course.sourcedId`). Text compares in code point
-- order (collation "C", the same on every server); `~` is "contains", in any
-- letter case (fold_case()). A field the record does not have matches no
-- predicate, `!=` included. PL/pgSQL: called for every record a filter
-- reads, it costs a fifth of the same loop as an SQL function (which
-- PostgreSQL cannot inline, for its subquery over the predicates).
create or replace function oneroster_match(
    record jsonb, fields text[], ops text[], vals text[], any_of boolean
) returns boolean
    language plpgsql
    immutable
    parallel safe
as $$
declare
    v text;
    ok boolean;
begin
    for i in 1 .. coalesce(array_length(fields, 1), 0) loop
        v := record #>> string_to_array(fields[i], '.');
        ok := coalesce(case ops[i]
            when '=' then v = vals[i]
            when '!=' then v <> vals[i]
            when '>' then v collate "C" > vals[i]
            when '>=' then v collate "C" >= vals[i]
            when '<' then v collate "C" < vals[i]
            when '<=' then v collate "C" <= vals[i]
            when '~' then strpos(fold_case(v), fold_case(vals[i])) > 0
        end, false);
        if ok = any_of then
            return ok;
        end if;
    end loop;
    return not any_of;
end
$$;

-- oneroster_pick(): the record with the fields `fields=` names, and no other.
create or replace function oneroster_pick(record json, fields text[]) returns json
    language sql
    immutable
    parallel safe
    return (
        select coalesce(json_object_agg(e.key, e.value), '{}')
        from json_each(record) as e
        where e.key = any(fields)
    );

-- oneroster_gone(): the tombstones of a kind since a time (`inclusive`:
-- from it on) that pass the filter's predicates, for a delta query; not
-- those of a sourcedId that is live again (a record created anew after its
-- deletion is not `tobedeleted`). A null `since` finds none. Inlined into
-- the statement that calls it (one SELECT, STABLE), with `of_kind` a
-- constant: the range is read from tombstones_kind_deleted_at and the CASE
-- comes down to the one kind's unique index on sourced_id.
create or replace function oneroster_gone(
    of_kind text,
    since timestamptz,
    inclusive boolean,
    fields text[],
    ops text[],
    vals text[],
    any_of boolean
) returns table (deleted_at timestamptz, record json)
    language sql
    stable
    parallel safe
as $$
    select t.deleted_at, oneroster_tombstone(t.sourced_id, t.deleted_at)
    from tombstones t
    where t.kind = of_kind
      and t.deleted_at >= since
      and (inclusive or t.deleted_at > since)
      -- Scalar subqueries, not EXISTS: each a probe of the unique index,
      -- never a hash of the whole table, whatever the planner guesses of
      -- the number of tombstones.
      and case of_kind
          when 'student' then (select x.id from students x where x.sourced_id = t.sourced_id)
          when 'course' then (select x.id from courses x where x.sourced_id = t.sourced_id)
          when 'term' then (select x.id from terms x where x.sourced_id = t.sourced_id)
          when 'enrollment' then (select x.student_id from student_courses x
                                  where x.sourced_id = t.sourced_id)
      end is null
      and (cardinality(fields) = 0
           or oneroster_match(oneroster_tombstone(t.sourced_id, t.deleted_at)::jsonb,
                              fields, ops, vals, any_of))
$$;
