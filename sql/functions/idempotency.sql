-- Idempotency keys: the kept count of the keys each scope has stored
-- (idempotency_scope_counts, migration 0014: 16 shards per scope, a key in
-- the shard of its hash, so two requests of one token contend for a counter
-- row only when their keys share a shard), and the redaction of the stored
-- answers that name a deleted student. The service's statements are in
-- sql/idempotency.sql.

-- idempotency_keys_counted_inserted and idempotency_keys_counted_deleted:
-- statement triggers, one insert per (scope, shard) a statement touched,
-- however many keys (the expiry deletes 5,000 a statement: a few rows
-- here). In (scope, shard) order, so that two statements lock the rows
-- they share in the same order and never deadlock. The store's ON CONFLICT
-- that replaces an expired key inserts no row (an empty table here) and
-- updates neither scope nor key: the count is unchanged, as it should be.
create or replace function count_idempotency_keys() returns trigger
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

-- idempotency_keys_counts_truncated: TRUNCATE fires no delete trigger, so
-- this empties the counts with the keys.
create or replace function clear_idempotency_scope_counts() returns trigger
language plpgsql as $$
begin
    delete from idempotency_scope_counts;
    return null;
end
$$;

-- students_redact_idempotent_answers: a deleted student's name and email
-- leave every stored answer that carries them (its body dropped; status,
-- content type and Location stay), whatever deleted the row. A
-- statement-level trigger: one update per DELETE, however many students it
-- deleted (its transition table). A delete that waits for a request holding
-- the student's row (the store's FOR KEY SHARE) runs this after that request
-- committed, and so sees, and redacts, its answer too.
create or replace function redact_idempotent_answers() returns trigger
language plpgsql as $$
begin
    update idempotency_keys
    set body = null, compressed = false, student_ids = null
    where student_ids && array(select id from gone);
    return null;
end
$$;

create or replace trigger idempotency_keys_counted_inserted
    after insert on idempotency_keys
    referencing new table as changed
    for each statement execute function count_idempotency_keys();

create or replace trigger idempotency_keys_counted_deleted
    after delete on idempotency_keys
    referencing old table as changed
    for each statement execute function count_idempotency_keys();

-- A key stays in its scope and shard: moving it would need both counts.
create or replace trigger idempotency_keys_scope_and_key_kept
    before update of scope, key on idempotency_keys
    for each row
    when (new.scope <> old.scope or new.key <> old.key)
    execute function refuse_counted_change(
        'an idempotency key does not move: delete it and insert another',
        'idempotency_keys_scope_and_key_kept');

create or replace trigger idempotency_keys_counts_truncated
    after truncate on idempotency_keys
    for each statement execute function clear_idempotency_scope_counts();

create or replace trigger students_redact_idempotent_answers
    after delete on students
    referencing old table as gone
    for each statement execute function redact_idempotent_answers();
