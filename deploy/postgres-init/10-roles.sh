#!/usr/bin/env bash
# Creates the service's least-privilege role, enrollment_app, from
# deploy/roles.sql: the one definition shared with installs without Docker.
#
# The official postgres image runs this once, when it initialises an empty
# data directory; it does not run again while the volume exists. To change
# the password later, run deploy/roles.sql again (see its header).
#
# docker-compose.yml mounts deploy/roles.sql read-only at ROLES_SQL. The
# password comes from APP_DB_PASSWORD in this container's environment and is
# read by roles.sql itself (\getenv), so it never appears on a command line.
#
# The image sources this file instead of running it when it is not
# executable, so it leaves the shell options of its caller alone.

roles_sql="${ROLES_SQL:-/etc/enrollment/roles.sql}"

if [ -z "${APP_DB_PASSWORD:-}" ]; then
    echo "10-roles.sh: APP_DB_PASSWORD is empty: set it in .env" >&2
    exit 1
fi
if [ ! -r "$roles_sql" ]; then
    echo "10-roles.sh: cannot read $roles_sql (deploy/roles.sql is mounted there)" >&2
    exit 1
fi

# During initialisation the server listens on its unix socket only; psql
# reaches it there, as POSTGRES_USER (the owner role, which owns the tables
# the migrations create).
psql --no-psqlrc --no-password --set ON_ERROR_STOP=1 \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set owner_role="$POSTGRES_USER" \
    --file "$roles_sql"
