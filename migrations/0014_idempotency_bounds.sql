-- Stored idempotent answers bounded in number and size, and never kept
-- beyond the students whose names and emails they carry.
-- depends: 0011_search
--
-- - idempotency_keys_scope_created_at serves the count of a scope's live
--   keys (LIMIT_IDEMPOTENCY_KEYS, service/idempotency.py), an index-only
--   scan stopped at the limit, and the age of its oldest key (Retry-After).
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
