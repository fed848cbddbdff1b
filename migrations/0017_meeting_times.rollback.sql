-- Back to 0016: the meetings as jsonb only. The trigger and both functions
-- go; registration.sql's record in schema_functions goes too, so that the
-- older release's migrate applies its registration_blocker() (which
-- compares the jsonb lists) again.

set local lock_timeout = '5s';

drop trigger courses_meeting_times on courses;
drop function courses_meeting_times();
alter table courses drop column meeting_times;
drop function week_minutes(jsonb);

delete from schema_functions where file = 'registration.sql';
