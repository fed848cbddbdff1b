-- The service's least-privilege role: it reads and writes rows, nothing more.
--
-- Migrations run as the owner role, which owns every table; the API connects
-- as the app role, which may SELECT, INSERT, UPDATE and DELETE but not
-- create, alter, drop or truncate anything. Default privileges make the
-- tables the migrations create later usable by the app role.
--
-- Run it as a superuser (or a member of the owner role that may create
-- roles), connected to the service's database, after creating the owner role:
--
--   psql -d enrollment -v app_password='...' -f deploy/roles.sql
--
-- or leave out -v app_password and export APP_DB_PASSWORD, which keeps the
-- password off the command line (psql 15 or newer). Optional variables:
-- -v owner_role=... (default enrollment_owner), -v app_role=... (default
-- enrollment_app). Running it again sets the password again and reapplies
-- the grants. deploy/postgres-init/10-roles.sh runs this file on the first
-- start of the Docker database.
--
-- Values reach SQL only through psql's quoting (:'literal', :"identifier"),
-- never by pasting text together.

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

select :'app_password' = '' as app_password_missing \gset
\if :app_password_missing
    \warn 'roles.sql: no password for the app role: pass -v app_password=... or set APP_DB_PASSWORD'
    do $$ begin raise exception 'no password for the app role'; end $$;
\endif

select current_database() as database_name \gset
select exists (select from pg_roles where rolname = :'app_role') as app_role_exists \gset

begin;

-- No attribute beyond LOGIN: it cannot create databases or roles, and
-- NOINHERIT keeps it from using the privileges of any role it is later
-- granted by mistake.
\if :app_role_exists
alter role :"app_role" with login nosuperuser nocreatedb nocreaterole noinherit
    noreplication nobypassrls password :'app_password';
\else
create role :"app_role" with login nosuperuser nocreatedb nocreaterole noinherit
    noreplication nobypassrls password :'app_password';
\endif

grant connect on database :"database_name" to :"app_role";

-- PostgreSQL 15 and later no longer let PUBLIC create in schema public;
-- older servers did. Say it explicitly so the app role cannot create tables
-- whatever the server version.
revoke create on schema public from public;
grant usage on schema public to :"app_role";

-- Tables and sequences the owner creates from now on (the migrations).
alter default privileges for role :"owner_role" in schema public
    grant select, insert, update, delete on tables to :"app_role";
-- Identity columns take their values from sequences; serial columns need
-- USAGE to call nextval().
alter default privileges for role :"owner_role" in schema public
    grant usage, select on sequences to :"app_role";

-- Tables that already exist, when this runs after the migrations.
grant select, insert, update, delete on all tables in schema public to :"app_role";
grant usage, select on all sequences in schema public to :"app_role";

commit;
