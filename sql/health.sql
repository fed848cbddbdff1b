-- Operations: readiness and start-up checks.

-- name: ping
-- The cheapest query that proves the database answers.
select 1;

-- name: missing_tables
-- Which of the tables the service needs ($1) do not exist in its search path.
select name
from unnest($1::text[]) as name
where to_regclass(name) is null;
