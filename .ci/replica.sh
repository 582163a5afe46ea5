#!/usr/bin/env bash
# Make a real streaming replica of the machine's PostgreSQL 15 primary
# (127.0.0.1:5432) available on 127.0.0.1:5433, for the live replica tests.
#
# Idempotent: if 127.0.0.1:5433 already answers and is in recovery, it does
# nothing. Otherwise it stops/removes any previous replica in $REPLICA_DIR,
# takes a fresh pg_basebackup (-R -X stream) of the primary, writes a minimal
# config (the Debian layout keeps the primary's config files in /etc, so the
# copied data directory has none), starts it with pg_ctl and checks that it is
# in recovery and streaming from the primary.
#
# It never stops, restarts or reconfigures the primary, with one exception:
# if the primary's pg_hba.conf has no entry allowing a `host replication`
# connection from 127.0.0.1, it appends one and calls pg_reload_conf()
# (a reload, not a restart), and says so loudly.
#
# Last line printed on success: the replica URL.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
REPLICA_DIR=${PGSIM_REPLICA_DIR:-/var/lib/postgresql/pgsim-replica}
PRIMARY_PORT=5432
REPLICA_PORT=5433
HOST=127.0.0.1
PGPASS_VALUE=postgres
REPLICA_URL="postgres://postgres:postgres@${HOST}:${REPLICA_PORT}/postgres"

# Steps run as the postgres OS user must not inherit an unreadable cwd (/root).
cd /

log() { echo "replica.sh: $*" >&2; }

die() {
    log "ERROR: $*"
    if [ -f "$REPLICA_DIR/log" ]; then
        log "---- last 40 lines of $REPLICA_DIR/log ----"
        tail -n 40 "$REPLICA_DIR/log" >&2 || true
        log "---- end of log ----"
    fi
    exit 1
}

# Run a command (argv, no shell re-parsing) as the postgres OS user.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    elif [ "$(id -un)" = postgres ]; then
        "$@"
    else
        sudo -u postgres -- "$@"
    fi
}

# psql over TCP as the postgres role with its password.
psql_tcp() {
    local port=$1
    shift
    PGPASSWORD=$PGPASS_VALUE PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q \
        -h "$HOST" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

replica_ok() {
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$REPLICA_PORT" &&
        [ "$(psql_tcp "$REPLICA_PORT" -Atc 'select pg_is_in_recovery()' 2>/dev/null)" = t ]
}

# ---------------------------------------------------------------- fast path
if replica_ok; then
    log "replica already running and in recovery on $HOST:$REPLICA_PORT; nothing to do"
    echo "$REPLICA_URL"
    exit 0
fi

# ---------------------------------------------------------------- primary
"$PG_BIN/pg_isready" -q -h "$HOST" -p "$PRIMARY_PORT" ||
    die "primary is not accepting connections on $HOST:$PRIMARY_PORT (start it first)"

# Settings a hot standby must have >= the primary's, or it refuses to start.
read -r P_MAX_CONN P_MAX_WORKERS P_MAX_WAL_SENDERS P_MAX_PREP P_MAX_LOCKS < <(
    psql_tcp "$PRIMARY_PORT" -AtF ' ' -c "select
        current_setting('max_connections'),
        current_setting('max_worker_processes'),
        current_setting('max_wal_senders'),
        current_setting('max_prepared_transactions'),
        current_setting('max_locks_per_transaction')"
) || die "cannot query the primary on $HOST:$PRIMARY_PORT as postgres/postgres (password not set?)"
WAL_LEVEL=$(psql_tcp "$PRIMARY_PORT" -Atc 'show wal_level')
[ "$WAL_LEVEL" = replica ] || [ "$WAL_LEVEL" = logical ] ||
    die "primary has wal_level=$WAL_LEVEL; streaming replication needs replica or logical (changing it needs a restart, not done here)"
[ "$P_MAX_WAL_SENDERS" -gt 0 ] ||
    die "primary has max_wal_senders=0; streaming replication impossible (changing it needs a restart, not done here)"
HBA_FILE=$(psql_tcp "$PRIMARY_PORT" -Atc 'show hba_file')
IDENT_FILE=$(psql_tcp "$PRIMARY_PORT" -Atc 'show ident_file')

# Does the primary's pg_hba.conf let postgres open a replication connection
# from 127.0.0.1? Test it for real (first matching line wins, so reading the
# file is not enough).
repl_probe() {
    PGPASSWORD=$PGPASS_VALUE PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At \
        "host=$HOST port=$PRIMARY_PORT user=postgres dbname=replication replication=true" \
        -c 'IDENTIFY_SYSTEM' 2>&1 >/dev/null
}
if ! probe_err=$(repl_probe); then
    if ! grep -q 'no pg_hba.conf entry' <<<"$probe_err"; then
        die "replication connection to the primary failed: $probe_err"
    fi
    [ -w "$HBA_FILE" ] ||
        die "primary's $HBA_FILE does not allow 'host replication' from $HOST and is not writable by $(id -un): $probe_err"
    log "NOTICE: primary's $HBA_FILE has no 'host replication' entry for postgres@$HOST;"
    log "NOTICE: appending 'host replication postgres $HOST/32 scram-sha-256' and reloading the primary (pg_reload_conf(), no restart)"
    {
        echo ''
        echo '# added by pgsim .ci/replica.sh: streaming replica on 127.0.0.1:5433'
        echo "host    replication     postgres        $HOST/32            scram-sha-256"
    } >>"$HBA_FILE"
    [ "$(psql_tcp "$PRIMARY_PORT" -Atc 'select pg_reload_conf()')" = t ] ||
        die "pg_reload_conf() on the primary failed"
    sleep 1
    probe_err=$(repl_probe) ||
        die "replication connection still refused after editing $HBA_FILE: $probe_err"
    log "NOTICE: primary's pg_hba.conf now allows host replication from $HOST"
fi

# ---------------------------------------------------------------- old replica
if [ -f "$REPLICA_DIR/postmaster.pid" ]; then
    if as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" status >/dev/null 2>&1; then
        log "stopping the previous replica in $REPLICA_DIR"
        as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w -t 60 stop >&2 ||
            die "could not stop the previous replica in $REPLICA_DIR"
    fi
fi
# pg_isready: 0 accepting, 1 rejecting, 2 no response. Port must be free now.
port_rc=0
"$PG_BIN/pg_isready" -q -h "$HOST" -p "$REPLICA_PORT" || port_rc=$?
[ "$port_rc" = 2 ] ||
    die "something other than the replica in $REPLICA_DIR answers on $HOST:$REPLICA_PORT (pg_isready exit $port_rc) and is not a usable standby; refusing to touch it"
if [ -e "$REPLICA_DIR" ]; then
    log "removing the previous replica directory $REPLICA_DIR"
    rm -rf -- "$REPLICA_DIR"
fi

# ---------------------------------------------------------------- base backup
PARENT_DIR=$(dirname "$REPLICA_DIR")
if [ ! -d "$PARENT_DIR" ]; then
    mkdir -p "$PARENT_DIR"
    chown postgres:postgres "$PARENT_DIR"
fi
log "taking a base backup of $HOST:$PRIMARY_PORT into $REPLICA_DIR"
as_postgres env PGPASSWORD="$PGPASS_VALUE" \
    "$PG_BIN/pg_basebackup" -h "$HOST" -p "$PRIMARY_PORT" -U postgres \
    -D "$REPLICA_DIR" -R -X stream -c fast >&2 ||
    die "pg_basebackup failed"
[ -f "$REPLICA_DIR/standby.signal" ] || die "pg_basebackup -R did not write standby.signal"
grep -q '^primary_conninfo' "$REPLICA_DIR/postgresql.auto.conf" ||
    die "pg_basebackup -R did not write primary_conninfo"

# ---------------------------------------------------------------- config
# postgresql.auto.conf (copied from the primary, then extended by -R) is read
# after postgresql.conf; make sure an ALTER SYSTEM on the primary cannot
# override where the replica listens.
sed -i -E '/^[[:space:]]*(port|listen_addresses|unix_socket_directories|data_directory|hba_file|ident_file|external_pid_file)[[:space:]]*=/d' \
    "$REPLICA_DIR/postgresql.auto.conf"

cat >"$REPLICA_DIR/postgresql.conf" <<EOF
# written by pgsim .ci/replica.sh: streaming replica of $HOST:$PRIMARY_PORT
port = $REPLICA_PORT
listen_addresses = '$HOST'
unix_socket_directories = '$REPLICA_DIR'
cluster_name = 'pgsim-replica'
hot_standby = on
shared_buffers = 32MB
# a hot standby needs these >= the primary's values
max_connections = $P_MAX_CONN
max_worker_processes = $P_MAX_WORKERS
max_wal_senders = $P_MAX_WAL_SENDERS
max_prepared_transactions = $P_MAX_PREP
max_locks_per_transaction = $P_MAX_LOCKS
wal_level = $WAL_LEVEL
wal_receiver_status_interval = 1s
logging_collector = off
log_line_prefix = '%m [%p] '
EOF
cp "$HBA_FILE" "$REPLICA_DIR/pg_hba.conf"
cp "$IDENT_FILE" "$REPLICA_DIR/pg_ident.conf"
chown postgres:postgres "$REPLICA_DIR/postgresql.conf" "$REPLICA_DIR/postgresql.auto.conf" \
    "$REPLICA_DIR/pg_hba.conf" "$REPLICA_DIR/pg_ident.conf"
chmod 0600 "$REPLICA_DIR/postgresql.conf" "$REPLICA_DIR/pg_hba.conf" "$REPLICA_DIR/pg_ident.conf"

# ---------------------------------------------------------------- start
log "starting the replica on $HOST:$REPLICA_PORT"
as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/log" -w -t 120 start >&2 ||
    die "pg_ctl start failed"
for _ in $(seq 1 60); do
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$REPLICA_PORT" && break
    sleep 1
done
"$PG_BIN/pg_isready" -q -h "$HOST" -p "$REPLICA_PORT" ||
    die "replica did not become ready on $HOST:$REPLICA_PORT"

in_recovery=$(psql_tcp "$REPLICA_PORT" -Atc 'select pg_is_in_recovery()' 2>&1) ||
    die "cannot query the replica: $in_recovery"
[ "$in_recovery" = t ] ||
    die "server on $HOST:$REPLICA_PORT is not in recovery (pg_is_in_recovery() = $in_recovery)"

# It must actually be streaming from the primary, not just replaying files.
status=
for _ in $(seq 1 30); do
    status=$(psql_tcp "$REPLICA_PORT" -Atc 'select status from pg_stat_wal_receiver' 2>/dev/null || true)
    [ "$status" = streaming ] && break
    sleep 1
done
[ "$status" = streaming ] ||
    die "replica's WAL receiver is not streaming (status='${status}')"

log "replica is in recovery and streaming from $HOST:$PRIMARY_PORT"
echo "$REPLICA_URL"
