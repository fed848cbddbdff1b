-- Terms and the rules of registration: a course may belong to a term and
-- carry credits, weekly meetings and prerequisites; a student may hold holds,
-- completions, and per-term settings (a time ticket, a credit limit) with
-- their enrolled credits kept. The rules themselves are functions
-- (sql/functions/registration.sql); this migration holds only data.
-- depends: 0015_functions_in_one_place
--
-- Existing courses get no term and behave exactly as before. Every column
-- added has a constant default or none, so no table is rewritten; the checks
-- and the course code's new unique index read courses and students once.
-- The four tables it alters are locked first, together (ACCESS EXCLUSIVE
-- until the commit: 0.4 to 0.8 s at 100,000 courses, 2.8 s at 1,000,000,
-- docs/operations.md): taken one ALTER at a time, in an order running
-- enrollments cross, they deadlocked with the traffic 3 times in 4.

set local lock_timeout = '5s';

lock table courses, students, student_courses, course_waitlist in access exclusive mode;

create table terms (
    id bigint generated always as identity primary key,
    code text not null check (char_length(code) between 1 and 32),
    title text not null check (char_length(title) between 1 and 200),
    starts_on date not null,
    ends_on date not null,
    registration_opens_at timestamptz,
    registration_closes_at timestamptz,
    drop_deadline timestamptz,
    max_credits numeric(3, 1) check (max_credits between 0 and 99.9),
    created_at timestamptz not null default now(),
    constraint terms_dates_ordered check (starts_on <= ends_on),
    constraint terms_registration_ordered
        check (registration_opens_at < registration_closes_at)
);

create unique index terms_code_key on terms (fold_case(code));

-- A course's term, credits, meetings ([{"days": [...], "starts": "HH:MM",
-- "ends": "HH:MM"}], checked in full by the service) and prerequisites
-- (course codes).
alter table courses
    add column term_id bigint,
    add column credits numeric(3, 1) not null default 0,
    add column meetings jsonb not null default '[]',
    add column prerequisites text[] not null default '{}',
    add constraint courses_term_id_fkey foreign key (term_id) references terms (id),
    add constraint courses_credits_check check (credits between 0 and 99.9),
    add constraint courses_meetings_check
        check (jsonb_typeof(meetings) = 'array' and jsonb_array_length(meetings) <= 10),
    add constraint courses_prerequisites_check check (cardinality(prerequisites) <= 20);

-- A code is unique, regardless of letter case, among the courses of a term
-- (and among those without one). The new index is built before the old one
-- goes, and takes its name: the service knows the constraint by it. It also
-- serves ?code= across terms (its first column).
create unique index courses_code_term_key on courses (fold_case(code), coalesce(term_id, 0));
drop index courses_code_key;
alter index courses_code_term_key rename to courses_code_key;

-- ?term_id= pages, and the foreign key's check when a term is deleted.
create index courses_term_id on courses (term_id, id) where term_id is not null;

-- holds: how many holds a student has, kept by the triggers of
-- student_holds. An enrollment into a course of a term reads it under the
-- student row's lock, which placing a hold (this counter's update) takes.
alter table students
    add column holds integer not null default 0,
    add constraint students_holds_check check (holds >= 0);

-- The rules a registrar overrode to admit the enrollment or the place in the
-- queue (null: none). A place's overrides stay for its promotion.
alter table student_courses add column overrides text[];
alter table course_waitlist add column overrides text[];

create table student_holds (
    id bigint generated always as identity primary key,
    student_id bigint not null references students (id) on delete cascade,
    reason text not null check (char_length(reason) between 1 and 200),
    created_at timestamptz not null default now()
);

create index student_holds_student_id on student_holds (student_id, id);

create table student_completions (
    id bigint generated always as identity primary key,
    student_id bigint not null references students (id) on delete cascade,
    code text not null check (char_length(code) between 1 and 32),
    completed_at timestamptz not null default now()
);

-- One completion of a code per student, and the prerequisite check's lookup.
create unique index student_completions_code_key
    on student_completions (student_id, fold_case(code));

-- A student's settings in a term (a time ticket, a credit limit replacing
-- the term's) and their enrolled credits in it, kept by the triggers of
-- student_courses. A row exists once either was set or the student enrolled
-- in a course of the term.
create table student_terms (
    student_id bigint not null references students (id) on delete cascade,
    term_id bigint not null references terms (id) on delete cascade,
    registration_opens_at timestamptz,
    max_credits numeric(3, 1) check (max_credits between 0 and 99.9),
    credits numeric(6, 1) not null default 0 check (credits >= 0),
    primary key (student_id, term_id)
);

create index student_terms_term_id on student_terms (term_id);
