-- Back to 0008's idempotency_keys: the answers whose body was not kept (too
-- large or redacted) and the compressed ones are deleted, since the service
-- before 0014 could neither replay nor read them; a retry with one of their
-- keys is then processed as a new request.

set local lock_timeout = '5s';

drop trigger idempotency_keys_counts_truncated on idempotency_keys;
drop trigger idempotency_keys_scope_and_key_kept on idempotency_keys;
drop trigger idempotency_keys_counted_deleted on idempotency_keys;
drop trigger idempotency_keys_counted_inserted on idempotency_keys;
drop function clear_idempotency_scope_counts();
drop function count_idempotency_keys();
drop table idempotency_scope_counts;

drop trigger students_redact_idempotent_answers on students;
drop function redact_idempotent_answers();

delete from idempotency_keys where body is null or compressed;

drop index idempotency_keys_student_ids;
drop index idempotency_keys_scope_created_at;

alter table idempotency_keys
    drop column student_ids,
    drop column compressed,
    alter column body set not null;
