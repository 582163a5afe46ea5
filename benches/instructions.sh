#!/usr/bin/env bash
# The mock server's cost per pgbench -S transaction, in instructions
# (valgrind's callgrind counts instructions, not seconds: repeatable on a
# shared, noisy machine), for one or two pgsim builds on the same fixtures.
#
#   benches/instructions.sh target/release/pgsim
#   benches/instructions.sh /path/to/older/pgsim target/release/pgsim   # before, after
#
# Needs valgrind, pgbench and the live server with the pgsim_bench database
# that benches/compare.sh creates (pgbench -i -s 1), at PGSIM_LIVE_URL or
# postgres:postgres@127.0.0.1:5432. The first build records the fixtures
# (older builds may not read newer fixture formats; newer ones read older).
# For each build and mode it runs the server under callgrind for TX
# transactions on one client, and once with no client; the difference over
# TX is the cost of one transaction, with loading and startup taken out.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 PGSIM [PGSIM...]" >&2; exit 2; }
LIVE_URL=${PGSIM_LIVE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
TX=${TX:-1000}
re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/]+)(:([0-9]+))?/'
[[ $LIVE_URL =~ $re ]] || { echo "cannot parse $LIVE_URL" >&2; exit 1; }
USER_=${BASH_REMATCH[2]}; export PGPASSWORD=${BASH_REMATCH[4]}
HOST=${BASH_REMATCH[5]}; PORT=${BASH_REMATCH[7]:-5432}
WORK=$(mktemp -d /tmp/pgsim-instr.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
conn() { echo "host=$1 port=$2 user=$USER_ dbname=pgsim_bench sslmode=disable"; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

"$1" record --upstream "$HOST:$PORT" --listen 127.0.0.1:6721 --fixtures "$WORK/fx" >"$WORK/record.log" 2>&1 &
REC=$!; wait_port 6721
pgbench -n -S -M prepared -c 1 -t "$TX" --random-seed=42 "$(conn 127.0.0.1 6721)" >/dev/null
kill -INT $REC; wait $REC || true

run() { # bin mode -> instructions
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$1" serve --fixtures "$WORK/fx" \
        --listen 127.0.0.1:6722 >/dev/null 2>"$WORK/vg.log" &
    local vg=$!; wait_port 6722
    sleep 1 # let the server install its signal handlers (valgrind is slow)
    if [ "$2" != idle ]; then
        pgbench -n -S -M "$2" -c 1 -t "$TX" --random-seed=42 "$(conn 127.0.0.1 6722)" >"$WORK/pgbench.log" 2>&1
        grep -q "actually processed: $TX/$TX" "$WORK/pgbench.log" || { cat "$WORK/pgbench.log" >&2; exit 1; }
    fi
    kill -INT $vg; wait $vg || true
    awk '/Collected/ {print $NF}' "$WORK/vg.log"
}

echo "| build | -M extended instructions/tx | -M prepared instructions/tx |"
echo "| --- | --- | --- |"
for bin in "$@"; do
    idle=$(run "$bin" idle)
    ext=$(run "$bin" extended)
    prep=$(run "$bin" prepared)
    printf '| %s | %.0f | %.0f |\n' "$bin" "$(echo "($ext - $idle) / $TX" | bc -l)" "$(echo "($prep - $idle) / $TX" | bc -l)"
done
