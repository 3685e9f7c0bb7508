#!/usr/bin/env bash
# Shape e's floor on a near-empty queue, as a soak runs it: 2 producers insert fresh tasks at
# 500/s in all, 4 claimers (one task per claim, up to 700 claims/s, so empty claims happen)
# keep up; a minute with the horizon moving, then a minute while another session holds
# `BEGIN; SELECT txid_current();`. Per run of RUNS (shape:lag, `|`-separated): the mean
# latency of a claim and its release per 10-s window (pgbench --progress), and, once the
# producers have stopped, the tasks the floors left behind: waiting, with an id below one a
# claim took (a real floor finds them when it is forgotten; this counts what it must find).
# Usage: live.sh [URL] (default postgres://postgres@127.0.0.1:5432/opts; overwritten).
set -euo pipefail
url=${1:-postgres://postgres@127.0.0.1:5432/opts}
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-"a:0 ms|e:0 ms|e:100 ms|f:0 ms"}
q() { psql "$url" -XAtq "$@"; }
q -f "$here/schema.sql" >/dev/null 2>&1
printf '%s\n' "INSERT INTO :tbl (namespace, queue, payload) VALUES ('ns', 'q', '{\"n\": 1}');" > /tmp/live-insert.sql
run() { # shape table lag
    q -c "TRUNCATE a_tasks, e_tasks" -c "VACUUM (ANALYZE) a_tasks, e_tasks" -c "CHECKPOINT"
    pgbench "$url" -n -c 2 -j 1 -R 500 -T 125 -D tbl="$2" -f /tmp/live-insert.sql >/dev/null 2>&1 &
    producers=$!
    sleep 1
    for phase in moving pinned; do
        holder=
        if [ "$phase" = pinned ]; then
            psql "$url" -XAtq -c "BEGIN; SELECT txid_current(); SELECT pg_sleep(90);" >/dev/null 2>&1 &
            holder=$!
            sleep 1
        fi
        floor=$(q -c "SELECT coalesce(max(id) + 1, 0) FROM $2 WHERE state <> 'new'")
        last=$(q -c "SELECT created_at, id FROM $2 WHERE state <> 'new' ORDER BY created_at DESC, id DESC LIMIT 1")
        fc=-infinity; fid=0; [ -n "$last" ] && { fc=${last%|*}; fid=${last#*|}; }
        pgbench "$url" -n -c 4 -j 2 -R 700 -T 60 -P 10 -D k=1 -D ids='{}' -D floor="$floor" -D lag="$3" -D fc="$fc" -D fid="$fid" \
            -f "$here/$1.sql" 2>&1 | awk -v s="$1" -v l="$3" -v p="$phase" \
            '/^progress:/ {for (i = 1; i <= NF; i++) if ($i == "lat") print "live", s, "lag=" l, p, $2, $(i + 1)}'
        if [ -n "$holder" ]; then
            kill "$holder" 2>/dev/null || true
            q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()" >/dev/null
        fi
    done
    wait "$producers" || true
    echo "left $1 lag=$3: $(q -c "SELECT count(*) FROM $2 WHERE state = 'new' AND id < (SELECT max(id) FROM $2 WHERE state <> 'new')") waiting below a claimed id, of $(q -c "SELECT count(*) FROM $2") created"
}
echo "# live: shape lag phase seconds latency_ms (claim + release); then the tasks left behind"
IFS='|' read -ra each <<< "$runs"
for r in "${each[@]}"; do
    shape=${r%%:*}
    run "$shape" "$(echo "$shape" | tr f a)_tasks" "${r#*:}"
done
