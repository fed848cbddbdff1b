-- Idempotency keys: the stored answer of every POST sent with an
-- Idempotency-Key header, kept IDEMPOTENCY_TTL so that a retry gets it again.
-- depends: 0007_batches
--
-- A key belongs to a scope: the name of the token that sent it ('' on an
-- instance without tokens), so two clients never see each other's answers.
-- The row is written in the same transaction as the request's effect (see
-- service/idempotency.py): either both are there or neither is. Requests
-- with the same key are kept apart by a transaction-level advisory lock on
-- a hash of scope and key, not by this table, so a second request never
-- waits for the first to finish: it is told the key is in use.
--
-- fingerprint is a SHA-256 digest of the method, the path and the body as a
-- JSON value, which tells a retry from another request with the same key.
-- body is the answer's exact bytes. No events: nothing here is the
-- school's data, and the expiry deletes it in the background.

set local lock_timeout = '5s';

create table idempotency_keys (
    scope text not null,
    key text not null check (length(key) between 1 and 255),
    fingerprint bytea not null,
    status smallint not null check (status between 200 and 499),
    content_type text,
    location text,
    body bytea not null,
    created_at timestamptz not null default now(),
    primary key (scope, key)
);

-- The expiry reads the oldest keys first, a batch at a time.
create index idempotency_keys_created_at on idempotency_keys (created_at);
