-- Undo 0007: the batch functions go; no data depends on them.

set local lock_timeout = '5s';

drop function batch_courses(text[], text[], boolean[], integer[], integer[], text);
drop function batch_students(text[], text[], text);
drop function batch_enroll(boolean[], bigint[], text[], bigint[], text[], boolean[], text);
