-- Stored idempotent answers bounded in number and size, and never kept
-- beyond the students whose names and emails they carry.
-- depends: 0013_search_bound
--
-- - idempotency_scope_counts keeps the number of keys each scope has
--   stored (LIMIT_IDEMPOTENCY_KEYS, service/idempotency.py), kept by the
--   triggers below rather than counted per request: a new key reads its
--   scope's 16 rows, however many keys it holds (see count_idempotency_keys).
-- - idempotency_keys_scope_created_at serves the age of a scope's oldest
--   key (Retry-After), and the keys of a scope at its limit that expired
--   but are not deleted yet (they no longer count).
-- - body is compressed by the service (zlib) when `compressed`; it is null
--   when the answer was not kept: too large, or redacted. Status, content
--   type and Location stay, so a replay still says what the request did.
--   Rows from before this migration keep their plain bodies.
-- - student_ids: the students whose data (name, email) the body carries,
--   found by the service from the emails in it and locked (FOR KEY SHARE)
--   when the answer is stored. Deleting a student drops the body of every
--   answer that names them, in the delete's own transaction, whatever
--   deleted the row (see redact_idempotent_answers below).
--
-- The answers stored before this migration are linked here the same way:
-- every string of their JSON body, split at white space, that is a
-- student's email (any letter case). The indexes are built under a SHARE
-- lock: keyed POSTs wait for them (seconds for millions of keys).

set local lock_timeout = '5s';

alter table idempotency_keys
    alter column body drop not null,
    add column compressed boolean not null default false,
    add column student_ids bigint[];

create index idempotency_keys_scope_created_at on idempotency_keys (scope, created_at);

-- Each scope's stored keys (expired or not), in 16 shards: a key counts in
-- the shard of its hash, so two requests of one token contend for a counter
-- row only when their keys hash to the same shard, and then only from the
-- store's insert to the commit (the shard's row lock); the count is their
-- sum. A shard may go below zero (a hash computed otherwise than when the
-- key was counted, after an upgrade): the sum stays exact.
create table idempotency_scope_counts (
    scope text not null,
    shard smallint not null,
    stored bigint not null,
    primary key (scope, shard)
);

-- Statement triggers: one insert per (scope, shard) a statement touched,
-- however many keys (the expiry deletes 5,000 a statement: a few rows
-- here). In (scope, shard) order, so that two statements lock the rows
-- they share in the same order and never deadlock. The store's ON CONFLICT
-- that replaces an expired key inserts no row (an empty table here) and
-- updates neither scope nor key: the count is unchanged, as it should be.
create function count_idempotency_keys() returns trigger
language plpgsql as $$
begin
    insert into idempotency_scope_counts as c (scope, shard, stored)
    select changed.scope, (hashtext(changed.key) & 15)::smallint,
           count(*) * case tg_op when 'INSERT' then 1 else -1 end
    from changed
    group by 1, 2
    order by 1, 2
    on conflict (scope, shard) do update set stored = c.stored + excluded.stored;
    return null;
end
$$;

create trigger idempotency_keys_counted_inserted
    after insert on idempotency_keys
    referencing new table as changed
    for each statement execute function count_idempotency_keys();

create trigger idempotency_keys_counted_deleted
    after delete on idempotency_keys
    referencing old table as changed
    for each statement execute function count_idempotency_keys();

-- A key stays in its scope and shard: moving it would need both counts.
create trigger idempotency_keys_scope_and_key_kept
    before update of scope, key on idempotency_keys
    for each row
    when (new.scope <> old.scope or new.key <> old.key)
    execute function refuse_counted_change(
        'an idempotency key does not move: delete it and insert another',
        'idempotency_keys_scope_and_key_kept');

-- TRUNCATE fires no delete trigger: it empties the counts with the keys.
create function clear_idempotency_scope_counts() returns trigger
language plpgsql as $$
begin
    delete from idempotency_scope_counts;
    return null;
end
$$;

create trigger idempotency_keys_counts_truncated
    after truncate on idempotency_keys
    for each statement execute function clear_idempotency_scope_counts();

-- The keys stored so far. After the triggers: creating them locked the
-- table against writes (to the commit), so no key is counted twice or missed.
insert into idempotency_scope_counts (scope, shard, stored)
select scope, (hashtext(key) & 15)::smallint, count(*)
from idempotency_keys
group by 1, 2;

-- Only the answers that carry a student's data are indexed: most carry none.
create index idempotency_keys_student_ids on idempotency_keys using gin (student_ids)
where student_ids is not null;

-- A statement-level trigger: one update per DELETE, however many students it
-- deleted (its transition table). A delete that waits for a request holding
-- the student's row (the store's FOR KEY SHARE) runs this after that request
-- committed, and so sees, and redacts, its answer too.
create function redact_idempotent_answers() returns trigger
language plpgsql as $$
begin
    update idempotency_keys
    set body = null, compressed = false, student_ids = null
    where student_ids && array(select id from gone);
    return null;
end
$$;

create trigger students_redact_idempotent_answers
    after delete on students
    referencing old table as gone
    for each statement execute function redact_idempotent_answers();

update idempotency_keys k
set student_ids = linked.ids
from (
    select k2.scope, k2.key, array_agg(distinct s.id) as ids
    from idempotency_keys k2
    cross join lateral jsonb_path_query(
        convert_from(k2.body, 'UTF8')::jsonb, 'strict $.** ? (@.type() == "string")'
    ) as text_value (value)
    cross join lateral regexp_split_to_table(text_value.value #>> '{}', '\s+') as word
    join students s on fold_case(s.email) = fold_case(word)
    where k2.content_type like 'application/%json'
      and position('\x40'::bytea in k2.body) > 0
      and word like '%@%'
    group by k2.scope, k2.key
) as linked
where k.scope = linked.scope and k.key = linked.key;
