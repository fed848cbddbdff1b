-- A course's weekly meetings kept as minutes of the week as well, an
-- int4multirange: the time-conflict rule becomes one `&&` of two columns
-- (registration_blocker(), sql/functions/registration.sql), where comparing
-- the jsonb lists cost an enrollment into a course of a term about 30 us of
-- the database's time (docs/performance.md, "The rules of registration").
-- depends: 0016_terms
--
-- meeting_times is kept by the trigger courses_meeting_times, which fires
-- only on an insert with meetings and an update naming meetings (or the
-- column itself): the counts' updates of every enrollment do not pay for it,
-- as they would for a stored generated column, computed again on every update.
-- The function and the trigger are created here too, so that no course
-- written between this migration and its release's functions goes without
-- them; sql/functions/registration.sql holds their current definitions.
--
-- Only courses locked (ACCESS EXCLUSIVE until the commit); the column's
-- constant default rewrites nothing, and only courses with meetings are
-- updated.

set local lock_timeout = '5s';

alter table courses add column meeting_times int4multirange not null default '{}';

create function week_minutes(meetings jsonb) returns int4multirange
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

create function courses_meeting_times() returns trigger
language plpgsql as $$
begin
    new.meeting_times := week_minutes(new.meetings);
    return new;
end;
$$;

create trigger courses_meeting_times
    before insert or update of meetings, meeting_times on courses
    for each row
    when (new.meetings <> '[]' or new.meeting_times <> '{}')
    execute function courses_meeting_times();

update courses set meeting_times = week_minutes(meetings) where meetings <> '[]';
