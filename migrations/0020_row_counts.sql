-- The number of students and of courses, kept (row_counts): the OneRoster
-- provider's X-Total-Count of a whole collection reads 16 rows instead of
-- counting 100,000 (docs/oneroster.md).
-- depends: 0019_sourced_ids_filled
--
-- Created empty. The triggers that keep it, and its first fill, are in
-- sql/functions/oneroster.sql, which migrate applies right after, under a
-- lock on students and courses (service/migrations.py): no write can fall
-- between the count and the triggers. Nothing else is locked here.

set local lock_timeout = '5s';

-- A kind's count is the sum of its 16 shards (a row's shard: its id & 15),
-- so that two transactions adding students contend for a row only one time
-- in 16.
create table row_counts (
    kind text not null check (kind in ('student', 'course')),
    shard smallint not null check (shard between 0 and 15),
    counted bigint not null,
    primary key (kind, shard)
);
