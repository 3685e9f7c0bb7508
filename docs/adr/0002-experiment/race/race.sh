#!/usr/bin/env bash
# Races ADR 0002's claim plane (schema.sql) on a real server: 6 inserting clients (batches
# of 1-3, one in ten rolled back), 2 claiming (one in ten rolled back after moving the
# cursor) and, unless SWEEP=off, one sweeping, for SECONDS_TO_RUN (20); then drains and
# checks that every committed task was claimed once and nothing else was. PIN=on also holds
# the horizon (`BEGIN; SELECT txid_current();`) from the start until the checks.
# Usage: race.sh [URL] (default postgres://postgres@127.0.0.1:5432/opts; overwritten).
set -euo pipefail
url=${1:-postgres://postgres@127.0.0.1:5432/opts}
here=$(cd "$(dirname "$0")" && pwd)
secs=${SECONDS_TO_RUN:-20}
q() { psql "$url" -XAtq "$@"; }
rm -f /tmp/race-*.log
q -f "$here/schema.sql" >/dev/null
holder=
if [ "${PIN:-off}" = on ]; then
    psql "$url" -XAtq -c "BEGIN; SELECT txid_current(); SELECT pg_sleep($secs + 3);" >/dev/null 2>&1 &
    holder=$!
    sleep 0.5
fi
pgbench "$url" -n -c 6 -j 2 -T "$secs" -f "$here/insert.sql" > /tmp/race-insert.log 2>&1 &
pgbench "$url" -n -c 2 -j 1 -T "$secs" -f "$here/claim.sql" > /tmp/race-claim.log 2>&1 &
if [ "${SWEEP:-on}" = on ]; then
    pgbench "$url" -n -c 1 -j 1 -T "$secs" -f "$here/sweep.sql" > /tmp/race-sweep.log 2>&1 &
fi
wait $(jobs -p | grep -v "^${holder:-none}$")
echo "after the race: frontier $(q -c "SELECT frontier FROM e_sweep"), cursor $(q -c "SELECT last_value FROM e_cursor")"
[ -n "$holder" ] && wait "$holder"
for _ in $(seq 50); do
    q -c "SELECT count(*) FROM e_claim(1000000)" >/dev/null
    [ "${SWEEP:-on}" = on ] && q -c "SELECT e_sweep()" >/dev/null
done
grep -h "failed\|aborted" /tmp/race-*.log | sed 's/^/pgbench: /' || true
echo "positions given $(q -c "SELECT last_value FROM e_pos")," \
     "committed $(q -c "SELECT count(*) FROM e_ready")," \
     "claimed $(q -c "SELECT count(*) FROM e_spent WHERE how = 'claim'") by claims and" \
     "$(q -c "SELECT count(*) FROM e_spent WHERE how = 'sweep'") by the sweep," \
     "frontier $(q -c "SELECT frontier FROM e_sweep"), cursor $(q -c "SELECT last_value FROM e_cursor")"
lost=$(q -c "SELECT count(*) FROM e_ready r LEFT JOIN e_spent s USING (pos) WHERE s.pos IS NULL")
ghost=$(q -c "SELECT count(*) FROM e_spent s LEFT JOIN e_ready r USING (pos) WHERE r.pos IS NULL")
echo "lost $lost, claimed without a committed row $ghost"
