-- The service's two roles, and exactly what each may do.
--
-- The owner role (enrollment_owner) runs the migrations and owns every table
-- they create; it may create in the database (the extensions they install). The app role (enrollment_app) is what the API connects as: it
-- may SELECT, INSERT, UPDATE and DELETE rows of the service's tables, those
-- of today and those later migrations add, and nothing else:
--
--   - no DDL: no CREATE in schema public or the database, no ALTER, DROP or
--     TRUNCATE, no TEMP tables;
--   - none of the migrations' bookkeeping: yoyo's tables (_yoyo_migration,
--     _yoyo_log, _yoyo_version, yoyo_lock) and schema_functions (which
--     version of sql/functions the database holds), so it cannot rewrite the
--     migration history, hold the migration lock, or make a migrate skip a
--     changed function;
--   - no CONNECT to any other database of the cluster;
--   - no sequence privileges: identity columns need none to insert (a serial
--     column would need USAGE on its sequence, granted by its migration).
--
-- Neither role is a superuser, creates databases or roles, or replicates.
--
-- Run it as a superuser other than these two roles, connected to the
-- service's database:
--
--   psql -d enrollment -v app_password='...' -f deploy/roles.sql
--
-- or leave out -v app_password and export APP_DB_PASSWORD, which keeps the
-- password off the command line (psql 15 or newer). The owner role is
-- created when it does not exist yet, with -v owner_password=... or
-- OWNER_DB_PASSWORD; an existing one keeps its password unless one is given.
-- Optional variables: -v owner_role=... (default enrollment_owner),
-- -v app_role=... (default enrollment_app). Running it again sets the
-- passwords given, and brings the attributes and grants back to the above:
-- run it after upgrading from an older roles.sql.
--
-- PUBLIC may CONNECT to every database by default. This file revokes that on
-- every other database of the cluster too, since the service's cluster is its
-- own. On a cluster shared with other applications pass
-- -v other_databases=keep, and refuse the app role in pg_hba.conf instead.
--
-- deploy/postgres-init/10-roles.sh runs this file on the first start of the
-- Docker database.
--
-- Values reach SQL only through psql's quoting (:'literal', :"identifier")
-- and format() with %I and %L, never by pasting text together.

\set ON_ERROR_STOP on

\if :{?owner_role}
\else
    \set owner_role enrollment_owner
\endif
\if :{?app_role}
\else
    \set app_role enrollment_app
\endif
\if :{?app_password}
\else
    \getenv app_password APP_DB_PASSWORD
\endif
\if :{?app_password}
\else
    \set app_password ''
\endif
\if :{?owner_password}
\else
    \getenv owner_password OWNER_DB_PASSWORD
\endif
\if :{?owner_password}
\else
    \set owner_password ''
\endif
\if :{?other_databases}
\else
    \set other_databases revoke
\endif

select :'app_password' = '' as app_password_missing,
       :'owner_password' <> '' as owner_password_given,
       :'other_databases' = 'revoke' as revoke_other_databases,
       :'other_databases' not in ('revoke', 'keep') as other_databases_unknown,
       current_database() as database_name,
       (select rolsuper from pg_roles where rolname = current_user) as is_superuser,
       current_user in (:'owner_role', :'app_role') or :'owner_role' = :'app_role'
           as roles_clash,
       exists (select from pg_roles where rolname = :'owner_role') as owner_role_exists,
       exists (select from pg_roles where rolname = :'app_role') as app_role_exists
\gset

\if :other_databases_unknown
    \warn 'roles.sql: other_databases must be revoke or keep'
    do $$ begin raise exception 'other_databases must be revoke or keep'; end $$;
\endif
\if :is_superuser
\else
    -- The event trigger below and the other databases need one.
    \warn 'roles.sql: run it as a superuser'
    do $$ begin raise exception 'roles.sql needs a superuser'; end $$;
\endif
\if :roles_clash
    \warn 'roles.sql: the owner role, the app role and the role running this file must be three roles'
    do $$ begin raise exception 'the owner role, the app role and the role running roles.sql must differ'; end $$;
\endif
\if :app_password_missing
    \warn 'roles.sql: no password for the app role: pass -v app_password=... or set APP_DB_PASSWORD'
    do $$ begin raise exception 'no password for the app role'; end $$;
\endif
\if :owner_role_exists
\elif :owner_password_given
\else
    \warn 'roles.sql: the owner role does not exist: pass -v owner_password=... or set OWNER_DB_PASSWORD to create it'
    do $$ begin raise exception 'no password for the owner role'; end $$;
\endif

begin;

-- No attribute beyond LOGIN. NOINHERIT keeps a role from using the
-- privileges of any role it is later granted by mistake.
\if :owner_role_exists
alter role :"owner_role" with login nosuperuser nocreatedb nocreaterole noinherit
    noreplication nobypassrls;
\else
create role :"owner_role" with login nosuperuser nocreatedb nocreaterole noinherit
    noreplication nobypassrls;
\endif
\if :owner_password_given
alter role :"owner_role" with password :'owner_password';
\endif

\if :app_role_exists
alter role :"app_role" with login nosuperuser nocreatedb nocreaterole noinherit
    noreplication nobypassrls password :'app_password';
\else
create role :"app_role" with login nosuperuser nocreatedb nocreaterole noinherit
    noreplication nobypassrls password :'app_password';
\endif

-- This database: PUBLIC's CONNECT and TEMPORARY go (it never has CREATE);
-- each role gets CONNECT alone. The owner role keeps what it holds if it owns
-- the database.
revoke all on database :"database_name" from public, :"app_role";
grant connect on database :"database_name" to :"owner_role", :"app_role";
-- The owner role creates the trusted extensions the migrations need
-- (pg_trgm, migration 0009), which takes CREATE on the database.
grant create on database :"database_name" to :"owner_role";

-- Every other database the app role could reach through PUBLIC.
\if :revoke_other_databases
select format('revoke connect on database %I from public', datname)
from pg_database
where datname <> current_database() and has_database_privilege('public', oid, 'connect')
\gexec
\endif
select format('revoke all on database %I from %I', datname, :'app_role')
from pg_database
where datname <> current_database() and has_database_privilege(:'app_role', oid, 'connect')
\gexec

-- PostgreSQL 15 and later no longer let PUBLIC create in schema public;
-- older servers did. Say it explicitly so the app role cannot create tables
-- whatever the server version. The owner role creates them: it may, whoever
-- owns the database.
revoke create on schema public from public;
revoke all on schema public from :"app_role";
grant usage on schema public to :"app_role";
grant usage, create on schema public to :"owner_role";

-- Tables the owner creates from now on (the migrations): DML, nothing more.
-- Revoked first, so a rerun drops whatever an older roles.sql granted
-- (USAGE on sequences, for one).
alter default privileges for role :"owner_role" in schema public
    revoke all on tables from :"app_role";
alter default privileges for role :"owner_role" in schema public
    grant select, insert, update, delete on tables to :"app_role";
alter default privileges for role :"owner_role" in schema public
    revoke all on sequences from :"app_role";

-- Tables that already exist, when this runs after the migrations.
revoke all on all tables in schema public from :"app_role";
grant select, insert, update, delete on all tables in schema public to :"app_role";
revoke all on all sequences in schema public from :"app_role";

-- yoyo creates its tables as the owner role, in schema public, so the default
-- privileges above would give them to the app role too. This event trigger
-- takes back every grant on a table named like yoyo's (_yoyo_* or yoyo_*) as
-- it is created: the ones yoyo creates on its first run, and any a later
-- version adds. It runs as the role creating the table, which owns it and so
-- may revoke.
create or replace function public.enrollment_private_yoyo_tables() returns event_trigger
language plpgsql set search_path = pg_catalog as $$
declare
    created regclass;
    grantee text;
begin
    for created in
        select objid::regclass from pg_event_trigger_ddl_commands()
        where classid = 'pg_class'::regclass and object_type = 'table'
    loop
        for grantee in
            select case when acl.grantee = 0 then 'public' else quote_ident(r.rolname) end
            from pg_class c
            cross join lateral aclexplode(c.relacl) acl
            left join pg_roles r on r.oid = acl.grantee
            where c.oid = created and c.relname ~ '^(_?yoyo_|schema_functions$)'
              and acl.grantee <> c.relowner
        loop
            execute format('revoke all on table %s from %s', created, grantee);
        end loop;
    end loop;
end;
$$;
revoke all on function public.enrollment_private_yoyo_tables() from public;
drop event trigger if exists enrollment_private_yoyo_tables;
create event trigger enrollment_private_yoyo_tables on ddl_command_end
    when tag in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    execute function public.enrollment_private_yoyo_tables();

-- yoyo's tables that exist already: this file ran after the migrations, or
-- an older one left them granted.
select format('revoke all on table %s from public, %I', c.oid::regclass, :'app_role')
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'p')
  and c.relname ~ '^(_?yoyo_|schema_functions$)'
\gexec

commit;
