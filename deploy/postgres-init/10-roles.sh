#!/usr/bin/env bash
# Creates the service's two roles from deploy/roles.sql, the one definition
# shared with installs without Docker: enrollment_owner, which runs the
# migrations, and enrollment_app, which the API connects as. Neither is a
# superuser; POSTGRES_USER, the cluster's superuser, runs this and nothing
# else.
#
# The official postgres image runs this once, when it initialises an empty
# data directory; it does not run again while the volume exists. To change a
# password later, run deploy/roles.sql again (see its header).
#
# docker-compose.yml mounts deploy/roles.sql read-only at ROLES_SQL and the
# two passwords as Docker secrets, at the paths OWNER_DB_PASSWORD_FILE and
# APP_DB_PASSWORD_FILE name. Each file is read as the image reads
# POSTGRES_PASSWORD_FILE (trailing newlines dropped) and reaches roles.sql
# through psql's environment (\getenv), so no password is on a command line.
#
# The image sources this file instead of running it when it is not
# executable, so it leaves the shell options of its caller alone.

roles_sql="${ROLES_SQL:-/etc/enrollment/roles.sql}"

# Prints the password in the file the variable named $1 points to.
read_password() {
    local variable="$1" path="${!1:-}" password
    if [ -z "$path" ]; then
        echo "10-roles.sh: $variable is not set (docker-compose.yml sets it)" >&2
        return 1
    fi
    if [ ! -r "$path" ] || ! password="$(< "$path")"; then
        echo "10-roles.sh: $variable: cannot read $path (a Docker secret, readable by uid 999)" >&2
        return 1
    fi
    if [ -z "$password" ]; then
        echo "10-roles.sh: $variable: $path is empty" >&2
        return 1
    fi
    # service/config.py refuses these for DATABASE_PASSWORD_FILE: stop here
    # rather than set a password the service cannot use.
    if [[ "$password" == *$'\n'* || "$password" == *$'\r'* ]]; then
        echo "10-roles.sh: $variable: $path must hold the password on one line" >&2
        return 1
    fi
    printf '%s' "$password"
}

owner_password="$(read_password OWNER_DB_PASSWORD_FILE)" || exit 1
app_password="$(read_password APP_DB_PASSWORD_FILE)" || exit 1
if [ ! -r "$roles_sql" ]; then
    echo "10-roles.sh: cannot read $roles_sql (deploy/roles.sql is mounted there)" >&2
    exit 1
fi

# During initialisation the server listens on its unix socket only; psql
# reaches it there as POSTGRES_USER.
OWNER_DB_PASSWORD="$owner_password" APP_DB_PASSWORD="$app_password" \
    psql --no-psqlrc --no-password --set ON_ERROR_STOP=1 \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --file "$roles_sql"
