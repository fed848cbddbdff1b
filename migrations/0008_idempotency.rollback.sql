-- Drops the stored answers of idempotent requests; nothing else changes. A
-- retry sent after this is processed again as a new request.

set local lock_timeout = '5s';

drop table idempotency_keys;
