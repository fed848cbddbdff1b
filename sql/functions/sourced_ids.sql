-- OneRoster sourcedIds (migration 0018): the sourced_id of a student,
-- course, term or enrollment.

-- sourced_id_valid: 1 to 255 characters, no white space or control
-- characters: the check constraints *_sourced_id_check of migration 0018,
-- the last guard (the service checks the same, at least as strictly, and
-- names the field: service/validation/fields.py, sourced_id()).
create or replace function sourced_id_valid(value text) returns boolean
language sql immutable parallel safe as $$
    select char_length(value) between 1 and 255 and value !~ '[[:space:][:cntrl:]]'
$$;

-- sourced_id_or_new: the sourced_id a client gave, else a new UUID, the
-- same as the columns' default gives a row inserted without one (a
-- promotion's enrollment). Every insert that may be given one takes it
-- from here: the single creates (sql/students.sql, courses.sql, terms.sql),
-- batch_students(), batch_courses(), batch_terms() and enroll_run().
create or replace function sourced_id_or_new(given text) returns text
language sql volatile parallel safe as $$
    select coalesce(given, gen_random_uuid()::text)
$$;
