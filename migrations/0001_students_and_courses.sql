-- Students and courses: the tables the service had before enrollments.
-- Emails and course codes are unique regardless of letter case; the unique
-- indexes on lower(...) enforce it in the database, whatever the client.

set local lock_timeout = '5s';

create table students (
    id bigint generated always as identity primary key,
    name text not null check (char_length(name) between 1 and 200),
    email text not null check (char_length(email) between 3 and 254),
    created_at timestamptz not null default now()
);

create unique index students_email_key on students (lower(email));

create table courses (
    id bigint generated always as identity primary key,
    code text not null check (char_length(code) between 1 and 32),
    title text not null check (char_length(title) between 1 and 200),
    capacity integer check (capacity between 1 and 100000),
    created_at timestamptz not null default now()
);

create unique index courses_code_key on courses (lower(code));
