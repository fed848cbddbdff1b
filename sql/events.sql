-- Events: the history of every change and the feed that follows it.
--
-- The triggers of sql/functions/events.sql write the events (new
-- enrollments: student_courses_inserted(); promotions: promote_waitlist()),
-- with the actor the writing statement set: every statement of the service
-- that changes something starts with set_config('enrollment.actor', <token
-- name>, true), or passes it to the function it calls, which sets it.
--
-- The feed serves only ids below the horizon: events of transactions older
-- than the oldest one still running, which can no longer change. Horizon and
-- events come from one statement, so from one snapshot (why ids are made
-- so: the header of sql/functions/events.sql).
-- With fewer rows than asked for, everything below the horizon has been
-- read: the next page may start at the horizon.

-- name: list_events
-- A page of the feed after id $1, $3 rows at most, of the types $2 (null: all).
with horizon as (
    select (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20) as below,
           (select purged_through from events_retention) as purged_through
)
select h.below, h.purged_through,
       e.id, e.type, e.at, e.actor, e.student_id, e.course_id, e.data
from horizon h
left join lateral (
    select id, type, at, actor, student_id, course_id, data
    from events
    where id > $1 and id < h.below and ($2::text[] is null or type = any ($2::text[]))
    order by id
    limit $3
) e on true
order by e.id;

-- name: list_student_events
-- The same, of student $4 only (and of course $5, unless null).
with horizon as (
    select (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20) as below,
           (select purged_through from events_retention) as purged_through
)
select h.below, h.purged_through,
       e.id, e.type, e.at, e.actor, e.student_id, e.course_id, e.data
from horizon h
left join lateral (
    select id, type, at, actor, student_id, course_id, data
    from events
    where student_id = $4 and id > $1 and id < h.below
      and ($2::text[] is null or type = any ($2::text[]))
      and ($5::bigint is null or course_id = $5)
    order by id
    limit $3
) e on true
order by e.id;

-- name: list_course_events
-- The same, of course $4 only.
with horizon as (
    select (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20) as below,
           (select purged_through from events_retention) as purged_through
)
select h.below, h.purged_through,
       e.id, e.type, e.at, e.actor, e.student_id, e.course_id, e.data
from horizon h
left join lateral (
    select id, type, at, actor, student_id, course_id, data
    from events
    where course_id = $4 and id > $1 and id < h.below
      and ($2::text[] is null or type = any ($2::text[]))
    order by id
    limit $3
) e on true
order by e.id;

-- name: events_since
-- What the long-poll watcher needs of the servable events from id $1 on, $2
-- at most: who and what each is about, never its data. With the horizon,
-- which says how far the feed has been looked through when fewer come back.
with horizon as (
    select (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20) as below
)
select h.below, e.id, e.type, e.student_id, e.course_id
from horizon h
left join lateral (
    select id, type, student_id, course_id
    from events
    where id >= $1 and id < h.below
    order by id
    limit $2
) e on true
order by e.id;

-- name: purge_events
-- Of the 1000 oldest events (by id, so read from the primary key's start;
-- a constant, so that even a generic plan deletes by the key),
-- delete those from before $1, and move the retention mark past them. Ids
-- follow time closely (they start with the transaction's id); one a little
-- out of step is kept for the next pass. One worker at a time (the advisory
-- lock); a batch keeps the delete's locks short.
with turn as (
    select pg_try_advisory_xact_lock(hashtext('enrollment.purge_events')) as mine
),
oldest as (
    select id, at from events order by id limit 1000
),
gone as (
    delete from events
    where (select mine from turn)
      and id in (select id from oldest where at < $1)
    returning id
),
mark as (
    update events_retention
    set purged_through = greatest(purged_through, (select max(id) from gone))
    where exists (select 1 from gone)
    returning purged_through
)
select count(*) from gone;

-- name: purge_tombstones
-- Of the 1000 oldest tombstones (read from the start of the index
-- tombstones_deleted_at), delete those from before $1, the events' bound:
-- a delta sync sees a deletion as long as the feed does. A tombstone has no
-- key; each is deleted by the address the same statement read it at. One
-- worker at a time (the advisory lock); a batch keeps the delete's locks short.
with turn as (
    select pg_try_advisory_xact_lock(hashtext('enrollment.purge_tombstones')) as mine
),
gone as (
    delete from tombstones
    where (select mine from turn)
      and ctid = any (array(
          select ctid from tombstones where deleted_at < $1 order by deleted_at limit 1000
      ))
    returning 1
)
select count(*) from gone;
