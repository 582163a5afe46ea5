#!/usr/bin/env bash
# Replay vs the real PostgreSQL, side by side, in one run on one machine.
#
#   benches/compare.sh            # full run (a few minutes)
#   ROUNDS=1 TX=2000 benches/compare.sh   # quicker
#   BEFORE_BIN=/path/to/old/pgsim PARTS=pgbench benches/compare.sh
#       # also replays with an older build, interleaved, for a before/after
#       # ratio of the replay hot path (the older build records, so that it
#       # can read what is replayed: newer builds read older fixtures)
#
# Needs the machine's PostgreSQL started as .ci/run does (PGSIM_LIVE_URL, or
# postgres:postgres@127.0.0.1:5432), pgbench and psql on the PATH. Every
# client uses sslmode=disable on every side, runs are interleaved, and the
# loopback floor (a bare pgwire server answering one fixed row) is measured
# in the same run. Prints a markdown table on stdout; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

LIVE_URL=${PGSIM_LIVE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
ROUNDS=${ROUNDS:-3}
TX=${TX:-5000}
SEED=${SEED:-42}
SCALES=${SCALES:-"10000 100000 1000000"}
ONE_KEY=${ONE_KEY:-100000}   # exchanges recorded on one key, for the growth table
DISTINCT=${DISTINCT:-100000} # exchanges each of its own statement: the cost per distinct statement
SUITE_TESTS=${SUITE_TESTS:-500}  # ORM-style tests in the psycopg suite
PARTS=${PARTS:-"pgbench catalog start scale suite"}   # which measurements to run
has() { [[ " $PARTS " == *" $1 "* ]]; }
DB=pgsim_bench

re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/]+)(:([0-9]+))?/'
[[ $LIVE_URL =~ $re ]] || { echo "cannot parse $LIVE_URL" >&2; exit 1; }
PGUSER_=${BASH_REMATCH[2]}; export PGPASSWORD=${BASH_REMATCH[4]}
LIVE_HOST=${BASH_REMATCH[5]}; LIVE_PORT=${BASH_REMATCH[7]:-5432}

REC_PORT=6601; REPLAY_PORT=6602; FLOOR_PORT=6603; CLUSTER_PORT=6604; START_PORT=6605; BEFORE_PORT=6606; TCP_PORT=6607
TCP_ROUNDS=${TCP_ROUNDS:-50000}
BEFORE_BIN=${BEFORE_BIN:-}
WORK=$(mktemp -d /tmp/pgsim-compare.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -d "$WORK/pgdata" ]; then su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $WORK/pgdata -m immediate stop" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "compare: $*" >&2; }
conn() { echo "host=$1 port=$2 user=$PGUSER_ dbname=${3:-$DB} sslmode=disable"; }
now_ms() { date +%s%3N; }
now_ns() { date +%s%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
wait_port() { # port [tries of 10 ms]
    for _ in $(seq 1 "${2:-1000}"); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.01; done
    echo "compare: nothing listens on $1" >&2; return 1
}

answered() { sed -n 's/.*answered_us=\([0-9]*\).*/\1/p'; }
serve_first() { # fixtures db sql -> µs from process start to the first answer
    local t0; t0=$(now_ns)
    "$BIN" serve --fixtures "$1" --listen 127.0.0.1:$START_PORT >/dev/null 2>&1 &
    local sp=$!
    target/release/examples/first_query "$(conn 127.0.0.1 $START_PORT "$2")" "$3" "$t0" | answered
    kill $sp; wait $sp 2>/dev/null || true
}

record_into() { # dir command...
    local dir=$1; shift
    "$REC_BIN" record --upstream "$LIVE_HOST:$LIVE_PORT" --listen 127.0.0.1:$REC_PORT --fixtures "$dir" >"$WORK/record.log" 2>&1 &
    local rec=$!; wait_port $REC_PORT
    "$@"
    kill -INT $rec; wait $rec || true
    log "$(tail -1 "$WORK/record.log")"
}
log "building (release)"
cargo build --release -q --bin pgsim --example floor_server --example gen_fixtures --example first_query --example catalog_load --example tcp_pingpong --example load_set
BIN=target/release/pgsim
REC_BIN=${BEFORE_BIN:-$BIN}
SIDES="live replay floor"
[ -n "$BEFORE_BIN" ] && SIDES="live replay before floor"

if has pgbench || has catalog; then
log "preparing $DB on the live server"
psql -X -q "$(conn "$LIVE_HOST" "$LIVE_PORT" postgres)" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
pgbench -i -s 1 -q "$(conn "$LIVE_HOST" "$LIVE_PORT")" >/dev/null 2>&1

# The catalog-heavy workload: what psql sends for its meta-commands, plus
# introspection queries; recorded once through psql, then replayed by a light
# client (examples/catalog_load) so the server's cost is what shows.
CATALOG="$WORK/catalog.sql"
cat >"$CATALOG" <<'SQL'
\dt
\d pgbench_accounts
\di
\dn
\l
\du
select table_name, column_name, data_type from information_schema.columns where table_schema = 'public' order by 1, 2;
select c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' order by 1;
SQL
CATALOG_REPS=${CATALOG_REPS:-20}

PGBENCH_RUNS=("simple 1" "extended 1" "prepared 1" "simple 4" "extended 4" "prepared 4")
run_pgbench() { # mode clients host port -> "tps latency_ms"
    pgbench -n -S -M "$1" -c "$2" -j "$2" -t "$TX" --random-seed="$SEED" "$(conn "$3" "$4")" 2>&1 |
        awk '/^latency average/ {lat=$4} /^tps/ {tps=$3} END {print tps, lat}'
}

log "recording pgbench -S (seed $SEED) and the catalog workload through pgsim record"
record_pgbench() { for run in "${PGBENCH_RUNS[@]}"; do set -- $run; run_pgbench "$1" "$2" 127.0.0.1 $REC_PORT >/dev/null; done; }
record_into "$WORK/fx/pgbench" record_pgbench
record_into "$WORK/fx/catalog" psql -X -q -o /dev/null -f "$CATALOG" "$(conn 127.0.0.1 $REC_PORT)"

"$BIN" serve --fixtures "$WORK/fx" --listen 127.0.0.1:$REPLAY_PORT >"$WORK/serve.log" 2>&1 &
SERVE=$!; PIDS+=($SERVE)
target/release/examples/floor_server 127.0.0.1:$FLOOR_PORT >/dev/null 2>&1 &
PIDS+=($!)
# The physical floor: raw TCP ping-pong between two processes.
# Its server is pinned to core 0 and measured from a client on the same core
# and on the other: on these VMs a wake-up across cores costs tens of µs.
taskset -c 0 target/release/examples/tcp_pingpong serve 127.0.0.1:$TCP_PORT >/dev/null 2>&1 &
PIDS+=($!)
wait_port $REPLAY_PORT; wait_port $FLOOR_PORT; wait_port $TCP_PORT
if [ -n "$BEFORE_BIN" ]; then
    "$BEFORE_BIN" serve --fixtures "$WORK/fx" --listen 127.0.0.1:$BEFORE_PORT >"$WORK/before.log" 2>&1 &
    BEFORE=$!; PIDS+=($BEFORE)
    wait_port $BEFORE_PORT
fi

declare -A TPS LAT CAT
TCP=""; TCPX=""
has pgbench && for round in $(seq 1 "$ROUNDS"); do
    log "pgbench round $round/$ROUNDS"
    for run in "${PGBENCH_RUNS[@]}"; do
        set -- $run
        for side in $SIDES; do
            case $side in live) h=$LIVE_HOST; p=$LIVE_PORT ;; replay) h=127.0.0.1; p=$REPLAY_PORT ;; floor) h=127.0.0.1; p=$FLOOR_PORT ;; before) h=127.0.0.1; p=$BEFORE_PORT ;; esac
            read -r tps lat < <(run_pgbench "$1" "$2" "$h" "$p")
            TPS["$1 $2 $side"]+="$tps "; LAT["$1 $2 $side"]+="$lat "
        done
    done
    TCP+="$(taskset -c 0 target/release/examples/tcp_pingpong client 127.0.0.1:$TCP_PORT "$TCP_ROUNDS") "
    TCPX+="$(taskset -c "$(($(nproc) - 1))" target/release/examples/tcp_pingpong client 127.0.0.1:$TCP_PORT "$TCP_ROUNDS") "
done

has catalog && for round in $(seq 1 "$ROUNDS"); do
    for side in live replay; do
        case $side in live) h=$LIVE_HOST; p=$LIVE_PORT ;; replay) h=127.0.0.1; p=$REPLAY_PORT ;; esac
        read -r ms queries < <(target/release/examples/catalog_load "$WORK/fx/catalog" "$(conn "$h" "$p") password=$PGPASSWORD" "$CATALOG_REPS")
        CAT[$side]+="$ms "; CAT_QUERIES=$queries
    done
done
kill -INT $SERVE; wait $SERVE || true
[ -n "$BEFORE_BIN" ] && { kill -INT $BEFORE; wait $BEFORE || true; }
MISSES=$(grep -o '[0-9]* misses' "$WORK/serve.log" | head -1)
fi

VERSION=(); WARM=(); COLD=(); CLUSTER=(); INPROC=""
if has start; then
log "time to first answer: pgsim serve (index cache warm, and cold) vs a throwaway cluster"
mkdir -p "$WORK/demo"
cp fixtures/demo/*.json "$WORK/demo/"
serve_first "$WORK/demo" pgsim_demo 'select * from items order by id' >/dev/null   # writes the cache
chown postgres "$WORK"
for _ in $(seq 1 "$ROUNDS"); do
    t0=$(now_ns); "$BIN" --version >/dev/null; t1=$(now_ns)
    VERSION+=("$(((t1 - t0) / 1000))")
    WARM+=("$(serve_first "$WORK/demo" pgsim_demo 'select * from items order by id')")
    rm -rf "$WORK/demo/.pgsim-cache"
    COLD+=("$(serve_first "$WORK/demo" pgsim_demo 'select * from items order by id')")
    t0=$(now_ns)
    su postgres -c "/usr/lib/postgresql/15/bin/initdb -A trust -U postgres -D $WORK/pgdata >/dev/null &&
        /usr/lib/postgresql/15/bin/pg_ctl -D $WORK/pgdata -o '-p $CLUSTER_PORT -k $WORK -c listen_addresses=127.0.0.1' -w -l $WORK/pg.log start >/dev/null"
    CLUSTER+=("$(target/release/examples/first_query "$(conn 127.0.0.1 $CLUSTER_PORT postgres)" 'SELECT 1' "$t0" | answered)")
    su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $WORK/pgdata -m immediate stop" >/dev/null
    rm -rf "$WORK/pgdata"
done
fi

SCALE_ROWS=(); GROWTH=()
if has scale; then
log "scale: synthetic fixture sets, loaded in-process (examples/load_set) and served"
load_row() { # dir label n
    local cold warm off first
    cold=$(target/release/examples/load_set "$1" cold 1)          # also writes the cache
    warm=$(target/release/examples/load_set "$1" warm 1)          # memory of one load
    local warm_ms; warm_ms=$(target/release/examples/load_set "$1" warm 3 | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    off=$(target/release/examples/load_set "$1" off 1)
    first=$(serve_first "$1" bench 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;')
    local fa="n/a (not recorded in this shape)"; [ -n "$first" ] && fa="$((first / 1000)) ms"
    local f='s/.*median_ms=\([0-9.]*\).*/\1/p' m='s/.*bytes_per_exchange=\([0-9]*\).*/\1/p'
    SCALE_ROWS+=("| $2 | $(($(du -sb --exclude=.pgsim-cache "$1" | cut -f1) / 1048576)) MiB | $(echo "$cold" | sed -n "$f") ms | $warm_ms ms | $(echo "$off" | sed -n "$f") ms | $fa | $(echo "$warm" | sed -n "$m") B | $(echo "$off" | sed -n "$m") B |")
    GROWTH+=("$3 $warm_ms $(echo "$warm" | sed -n "$m")")
}
for n in $SCALES; do
    target/release/examples/gen_fixtures "$WORK/scale-$n" "$n" >/dev/null
    load_row "$WORK/scale-$n" "$n" "$n"
    rm -rf "$WORK/scale-$n"
done
if [ "$ONE_KEY" -gt 0 ]; then
    target/release/examples/gen_fixtures "$WORK/one-key" "$ONE_KEY" one-key >/dev/null
    load_row "$WORK/one-key" "$ONE_KEY on one key" 0
    rm -rf "$WORK/one-key"
fi
if [ "$DISTINCT" -gt 0 ]; then
    target/release/examples/gen_fixtures "$WORK/distinct" "$DISTINCT" distinct-sql >/dev/null
    load_row "$WORK/distinct" "$DISTINCT, each its own statement" 0
    rm -rf "$WORK/distinct"
fi
fi

SUITE_LIVE=(); SUITE_REPLAY=()
if has suite; then
log "real-client suite: benches/orm_suite.py through psycopg, live and replayed ($SUITE_TESTS tests)"
SUITE_DB=pgsim_suite
fresh_suite_db() {
    psql -X -q "$(conn "$LIVE_HOST" "$LIVE_PORT" postgres)" -c "DROP DATABASE IF EXISTS $SUITE_DB WITH (FORCE)" -c "CREATE DATABASE $SUITE_DB"
}
fresh_suite_db
record_into "$WORK/fx-suite" sh -c "python3 benches/orm_suite.py '$(conn 127.0.0.1 $REC_PORT $SUITE_DB)' $SUITE_TESTS setup > $WORK/suite-recorded.txt"
SUITE_WANT=$(cat "$WORK/suite-recorded.txt")
SUITE_SAME=yes
for _ in $(seq 1 "$ROUNDS"); do
    fresh_suite_db
    t0=$(now_ms)
    got=$(python3 benches/orm_suite.py "$(conn "$LIVE_HOST" "$LIVE_PORT" $SUITE_DB)" "$SUITE_TESTS" setup)
    t1=$(now_ms); SUITE_LIVE+=("$((t1 - t0))")
    [ "$got" = "$SUITE_WANT" ] || SUITE_SAME="no (live: $got)"
    t0=$(now_ms)
    "$BIN" serve --fixtures "$WORK/fx-suite" --listen 127.0.0.1:$START_PORT >"$WORK/suite-serve.log" 2>&1 &
    sp=$!
    wait_port $START_PORT
    got=$(python3 benches/orm_suite.py "$(conn 127.0.0.1 $START_PORT $SUITE_DB)" "$SUITE_TESTS" setup)
    t1=$(now_ms); SUITE_REPLAY+=("$((t1 - t0))")
    kill -INT $sp; wait $sp || true
    [ "$got" = "$SUITE_WANT" ] || SUITE_SAME="no (replay: $got)"
done
SUITE_MISSES=$(grep -o '[0-9]* misses' "$WORK/suite-serve.log" | head -1)
psql -X -q "$(conn "$LIVE_HOST" "$LIVE_PORT" postgres)" -c "DROP DATABASE IF EXISTS $SUITE_DB WITH (FORCE)"
fi

cpu=$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
echo "## pgsim compare — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB; PostgreSQL $(psql -X -A -t -c 'show server_version' "$(conn "$LIVE_HOST" "$LIVE_PORT" postgres)"); rounds=$ROUNDS, -t $TX per client, seed $SEED; medians."
echo
if has pgbench; then
echo "### pgbench -S (TPS, median of $ROUNDS interleaved runs; replay: $MISSES)"
echo
echo "| mode | clients | live TPS | replay TPS | floor TPS | live lat ms | replay lat ms | replay/live | replay/floor |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for run in "${PGBENCH_RUNS[@]}"; do
    set -- $run
    l=$(echo ${TPS["$1 $2 live"]} | tr ' ' '\n' | median); r=$(echo ${TPS["$1 $2 replay"]} | tr ' ' '\n' | median)
    f=$(echo ${TPS["$1 $2 floor"]} | tr ' ' '\n' | median)
    ll=$(echo ${LAT["$1 $2 live"]} | tr ' ' '\n' | median); rl=$(echo ${LAT["$1 $2 replay"]} | tr ' ' '\n' | median)
    printf '| %s | %s | %.0f | %.0f | %.0f | %.3f | %.3f | %.2f | %.2f |\n' "$1" "$2" "$l" "$r" "$f" "$ll" "$rl" \
        "$(echo "$r / $l" | bc -l)" "$(echo "$r / $f" | bc -l)"
done
echo
t=$(echo $TCP | tr ' ' '\n' | median); x=$(echo $TCPX | tr ' ' '\n' | median)
echo "Physical floor, same run: raw loopback TCP ping-pong between two processes (60-byte request, 40-byte answer, no protocol), $(printf '%.0f' "$t") round trips/s with both on one core, $(printf '%.0f' "$x") across cores (median of $ROUNDS; pgbench and the servers above are not pinned, so they land on either). One pgbench client, as a fraction of each:"
echo
echo "| mode | replay/TCP one core | pgwire floor/TCP one core | replay/TCP across cores | live/TCP across cores |"
echo "| --- | --- | --- | --- | --- |"
for mode in simple extended prepared; do
    l=$(echo ${TPS["$mode 1 live"]} | tr ' ' '\n' | median); r=$(echo ${TPS["$mode 1 replay"]} | tr ' ' '\n' | median)
    f=$(echo ${TPS["$mode 1 floor"]} | tr ' ' '\n' | median)
    printf '| %s | %.2f | %.2f | %.2f | %.2f |\n' "$mode" "$(echo "$r / $t" | bc -l)" "$(echo "$f / $t" | bc -l)" "$(echo "$r / $x" | bc -l)" "$(echo "$l / $x" | bc -l)"
done
echo
if [ -n "$BEFORE_BIN" ]; then
echo "#### Replay before and after (same fixtures, recorded by the older build; interleaved with the runs above)"
echo
echo "| mode | clients | before TPS | after TPS | after/before | before/live | after/live |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for run in "${PGBENCH_RUNS[@]}"; do
    set -- $run
    l=$(echo ${TPS["$1 $2 live"]} | tr ' ' '\n' | median); r=$(echo ${TPS["$1 $2 replay"]} | tr ' ' '\n' | median)
    b=$(echo ${TPS["$1 $2 before"]} | tr ' ' '\n' | median)
    printf '| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f |\n' "$1" "$2" "$b" "$r" \
        "$(echo "$r / $b" | bc -l)" "$(echo "$b / $l" | bc -l)" "$(echo "$r / $l" | bc -l)"
done
echo
fi
fi
if has catalog; then
cl=$(echo ${CAT[live]} | tr ' ' '\n' | median); cr=$(echo ${CAT[replay]} | tr ' ' '\n' | median)
echo "### Catalog-heavy workload (what psql sends for its dt, d, di, dn, l and du meta-commands plus two introspection queries: $CAT_QUERIES queries on one connection, median of $ROUNDS)"
echo
echo "| live ms | replay ms | live/replay |"
echo "| --- | --- | --- |"
printf '| %.0f | %.0f | %.1f |\n' "$cl" "$cr" "$(echo "$cl / $cr" | bc -l)"
echo
fi
if has start; then
v=$(printf '%s\n' "${VERSION[@]}" | median); w=$(printf '%s\n' "${WARM[@]}" | median)
c=$(printf '%s\n' "${COLD[@]}" | median); k=$(printf '%s\n' "${CLUSTER[@]}" | median)
echo "### Time to first answered query (from process start, µs, median of $ROUNDS)"
echo
echo "| pgsim --version (process floor) | pgsim serve, bundled demo, index cache | same, first start (no cache) | throwaway cluster (initdb + start + SELECT 1) | cluster/pgsim |"
echo "| --- | --- | --- | --- | --- |"
printf '| %s | %s | %s | %s | %.0f |\n' "$v" "$w" "$c" "$k" "$(echo "$k / ($w + 0.0001)" | bc -l)"
echo
fi
if has scale; then
echo "### Scale and growth (synthetic pgbench-shaped exchanges, 50,000 per file)"
echo
echo "Load is in-process (examples/load_set: first start = JSON parsed and the index cache written; cache = every later start; JSON only = cache off); first answer is pgsim serve from process start with the cache; memory is what one loaded set holds (resident, after a load with the cache, and with JSON only)."
echo
echo "| exchanges | JSON | load, first start | load, cache | load, JSON only | first answer | memory/exchange (cache) | memory/exchange (JSON only) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${SCALE_ROWS[@]}"
echo
set -- ${GROWTH[0]}; n1=$1; t1=$2
for g in "${GROWTH[@]}"; do set -- $g; [ "$1" -gt 0 ] && { n2=$1; t2=$2; }; done
if [ "${n2:-0}" -gt "$n1" ]; then
printf 'Growth of the cached load from %s to %s exchanges: x%.1f for x%.0f the exchanges (slope %.2f on a log-log scale; 1.00 is linear).\n' \
    "$n1" "$n2" "$(echo "$t2 / $t1" | bc -l)" "$(echo "$n2 / $n1" | bc -l)" "$(echo "l($t2 / $t1) / l($n2 / $n1)" | bc -l)"
echo
fi
fi
if has suite; then
sl=$(printf '%s\n' "${SUITE_LIVE[@]}" | median); sr=$(printf '%s\n' "${SUITE_REPLAY[@]}" | median)
echo "### A real-client suite (benches/orm_suite.py, psycopg 3: $(echo "$SUITE_WANT" | sed 's/ digest.*//'), wall ms, median of $ROUNDS)"
echo
echo "Live runs against the running server on a fresh database; replay includes starting pgsim serve on the recording. Same output live and replayed: $SUITE_SAME; replay: ${SUITE_MISSES:-?}."
echo
echo "| live | replay (with server start) | live/replay |"
echo "| --- | --- | --- |"
printf '| %s ms | %s ms | %.1f |\n' "$sl" "$sr" "$(echo "$sl / $sr" | bc -l)"
echo
fi
