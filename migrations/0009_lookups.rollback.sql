-- Drops the trigram indexes of ?q=, and pg_trgm if this role owns it and
-- nothing else uses it.

set local lock_timeout = '5s';

drop index courses_title_trgm;
drop index courses_code_trgm;
drop index students_email_trgm;
drop index students_name_trgm;

-- Created by a superuser, or used by other objects of the database: kept.
do $$
begin
    if exists (select from pg_extension where extname = 'pg_trgm' and extowner = current_user::regrole) then
        drop extension pg_trgm;
    end if;
exception
    when dependent_objects_still_exist then
        raise notice 'pg_trgm is kept: other objects of this database use it';
end;
$$;
