#!/usr/bin/env bash
# The cost of one toolkit round trip (`Client::query_one` through the pool
# to an in-process mock server and back: client and server), in
# instructions (valgrind's callgrind: repeatable on a shared, noisy
# machine), plain, with a formatting tracing subscriber on every thread,
# and with one no-op hook; for one or more builds of
# examples/toolkit_round_trips.
#
#   cargo build --release --example toolkit_round_trips
#   benches/toolkit_instructions.sh target/release/examples/toolkit_round_trips
#   MODES="plain traced" benches/toolkit_instructions.sh OLD_BUILD NEW_BUILD
#
# Instructions at N round trips minus instructions at 0, over N.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 EXAMPLE_BIN [EXAMPLE_BIN...]" >&2; exit 2; }
N=${N:-2000}
MODES=${MODES:-plain traced hook}
WORK=$(mktemp -d /tmp/pgsim-tk-instr.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
count() { # bin n mode -> instructions
    local extra=""
    [ "$3" = plain ] || extra=$3
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$1" "$2" $extra \
        >/dev/null 2>"$WORK/vg.log" || { cat "$WORK/vg.log" >&2; exit 1; }
    awk '/Collected/ {print $NF}' "$WORK/vg.log"
}
printf '| build |'; for m in $MODES; do printf ' %s instructions/round trip |' "$m"; done; echo
printf '| --- |'; for m in $MODES; do printf ' --- |'; done; echo
for bin in "$@"; do
    printf '| %s |' "$bin"
    for m in $MODES; do
        base=$(count "$bin" 0 "$m")
        full=$(count "$bin" "$N" "$m")
        printf ' %.0f |' "$(echo "($full - $base) / $N" | bc -l)"
    done
    echo
done
