-- Back to 0008's idempotency_keys: the answers whose body was not kept (too
-- large or redacted) and the compressed ones are deleted, since the service
-- before 0014 could neither replay nor read them; a retry with one of their
-- keys is then processed as a new request.

set local lock_timeout = '5s';

drop trigger students_redact_idempotent_answers on students;
drop function redact_idempotent_answers();

delete from idempotency_keys where body is null or compressed;

drop index idempotency_keys_student_ids;
drop index idempotency_keys_scope_created_at;

alter table idempotency_keys
    drop column student_ids,
    drop column compressed,
    alter column body set not null;
