-- Idempotency keys: the stored answers of POSTs sent with an Idempotency-Key
-- (the tables of migrations 0008 and 0014, their triggers in
-- sql/functions/idempotency.sql). Every statement but the expiry runs inside
-- the request's transaction, after the advisory lock below (see
-- service/idempotency.py).

-- name: lock_key
-- The key's advisory lock, $1 a 64-bit hash of its scope and key, held to the
-- end of the transaction; false at once when another transaction holds it.
select pg_try_advisory_xact_lock($1);

-- name: get_answer
-- The stored answer of key $2 in scope $1, unless it is older than $3 (an
-- interval), and whether its body is compressed; when there is none, `held`:
-- the scope's live keys as far as the limit $4 needs them. The count is
-- kept, not counted (idempotency_scope_counts, by the triggers of
-- sql/functions/idempotency.sql): the sum of
-- the scope's 16 shards, committed keys only. From $4 on, the keys that
-- expired but are not deleted yet (a minute's worth, as the expiry runs) are
-- taken off: read oldest first from an index on created_at, as many as it
-- takes to fall below $4 at most (usually one, or none there). So `held` is
-- exact below $4, and at or above it when no expired key remains; else it
-- is $4 - 1. One row always.
select k.fingerprint, k.status, k.content_type, k.location, k.body, k.compressed,
       case when k.key is null then (
           select counted.stored - case when counted.stored >= $4 then (
               select count(*) from (
                   select from idempotency_keys
                   where scope = $1 and created_at <= now() - $3::interval
                   order by created_at
                   limit counted.stored - $4 + 1
               ) as expired
           ) else 0 end
           from (
               select coalesce(sum(stored), 0)::bigint as stored
               from idempotency_scope_counts
               where scope = $1
           ) as counted
       ) end as held
from (select) as one
left join idempotency_keys k
    on k.scope = $1 and k.key = $2 and k.created_at > now() - $3::interval;

-- name: first_expiry
-- Seconds until the oldest live key of scope $1 (older than $2, an interval:
-- expired) expires; null when it has none.
select ceil(extract(epoch from min(created_at) + $2::interval - now()))::integer
from idempotency_keys
where scope = $1 and created_at > now() - $2::interval;

-- name: store_answer
-- The answer to the first request with key $1 in the scope of actor $8 (the
-- token's name, '' without tokens): the digest of the request ($2) and the
-- status, content type, Location and body sent ($6: null when too large to
-- keep; zlib-compressed when $9). $10 are the emails the body carries, $11
-- the student the path names (a hold's reason is theirs): the students who
-- have them (any letter case) are recorded, and their rows held
-- (FOR KEY SHARE) to the commit, so that a delete of one waits and then
-- redacts this answer (redact_idempotent_answers()). An expired row of the
-- same key (older than $7) is replaced; a live one never is (no row comes
-- back).
insert into idempotency_keys as k
    (scope, key, fingerprint, status, content_type, location, body, compressed, student_ids)
select $8, $1, $2, $3, $4, $5, $6, $9, nullif(array(
    select s.id
    from students s
    where fold_case(s.email) = any (array(select fold_case(e) from unnest($10::text[]) as e))
       or s.id = $11::bigint
    order by s.id
    for key share
), '{}')
from (select set_config('enrollment.actor', $8, true)) as actor
on conflict (scope, key) do update
set fingerprint = excluded.fingerprint,
    status = excluded.status,
    content_type = excluded.content_type,
    location = excluded.location,
    body = excluded.body,
    compressed = excluded.compressed,
    student_ids = excluded.student_ids,
    created_at = excluded.created_at
where k.created_at <= now() - $7::interval
returning 1;

-- name: expire_keys
-- Delete keys older than $1 (an interval), the 5000 oldest at most (a
-- constant, so that even a generic plan reads them from the index on
-- created_at, then deletes them by their row addresses); how many went. The
-- age is checked again on the row deleted: a key a request renewed (an
-- expired key used again) since the batch was read is kept. One worker at a
-- time (the advisory lock); a batch keeps the delete's locks and WAL short.
with turn as (
    select pg_try_advisory_xact_lock(hashtext('enrollment.expire_idempotency_keys')) as mine
),
gone as (
    delete from idempotency_keys
    where (select mine from turn)
      and ctid = any (array(
          select ctid
          from idempotency_keys
          where created_at < now() - $1::interval
          order by created_at
          limit 5000
      ))
      and created_at < now() - $1::interval
    returning 1
)
select count(*) from gone;
