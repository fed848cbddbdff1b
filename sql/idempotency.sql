-- Idempotency keys: the stored answers of POSTs sent with an Idempotency-Key
-- (migration 0008). Every statement but the expiry runs inside the request's
-- transaction, after the advisory lock below (see service/idempotency.py).

-- name: lock_key
-- The key's advisory lock, $1 a 64-bit hash of its scope and key, held to the
-- end of the transaction; false at once when another transaction holds it.
select pg_try_advisory_xact_lock($1);

-- name: get_answer
-- The stored answer of key $2 in scope $1, unless it is older than $3 (an interval).
select fingerprint, status, content_type, location, body
from idempotency_keys
where scope = $1 and key = $2 and created_at > now() - $3::interval;

-- name: store_answer
-- The answer to the first request with key $1 in the scope of actor $8 (the
-- token's name, '' without tokens): the digest of the request ($2) and the
-- status, content type, Location and body sent. An expired row of the same
-- key (older than $7) is replaced; a live one never is (no row comes back).
insert into idempotency_keys as k (scope, key, fingerprint, status, content_type, location, body)
select $8, $1, $2, $3, $4, $5, $6
from (select set_config('enrollment.actor', $8, true)) as actor
on conflict (scope, key) do update
set fingerprint = excluded.fingerprint,
    status = excluded.status,
    content_type = excluded.content_type,
    location = excluded.location,
    body = excluded.body,
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
