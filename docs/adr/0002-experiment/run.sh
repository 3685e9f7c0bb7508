#!/usr/bin/env bash
# Measures ADR 0002's storage shapes side by side with pgbench (see schema.sql).
#   drain:  tasks/s and WAL bytes per task draining a prefilled queue, per shape, in
#           alternating rounds (shape order a b c each round);
#   pinned: claim latency per 10-s window at a fixed 500 tasks/s, first with a moving
#           horizon, then while another session holds `BEGIN; SELECT txid_current();`,
#           and the dead tuples left per task.
# Usage: run.sh [URL] (default postgres://postgres@127.0.0.1:5432/opts; the database must
# exist and is overwritten). Environment: SHAPES (a b c d e f; also a1: a's release of the
# previous batch and the next claim in one transaction), ROUNDS (3), SECONDS_PER_RUN (10), WINDOWS (6),
# FILL (800000), PHASES (drain pinned), PREPARED (0; 1: the pinned phase with prepared
# statements and generic plans, as pgqueue runs its own, so no statement is planned per call).
set -euo pipefail
url=${1:-postgres://postgres@127.0.0.1:5432/opts}
here=$(cd "$(dirname "$0")" && pwd)
shapes=${SHAPES:-a b c d}
rounds=${ROUNDS:-3}; secs=${SECONDS_PER_RUN:-10}; windows=${WINDOWS:-6}
# Enough waiting tasks that no shape runs dry within a run (a run that did is marked).
fill=${FILL:-800000}
q() { psql "$url" -XAtq "$@"; }
ended() {
    case $1 in
        a|a1|f) q -c "SELECT count(*) FROM a_tasks WHERE state = 'released'" ;;
        b) q -c "SELECT count(*) FROM b_history" ;;
        c|d) q -c "SELECT count(*) FROM c_history" ;;
        e) q -c "SELECT count(*) FROM e_tasks WHERE state = 'released'" ;;
    esac
}
# Empties every shape, then fills shape $1 with $2 waiting tasks (one queue, one priority).
fill() {
    q -c "TRUNCATE a_tasks, b_tasks, e_tasks, b_history, c_ready, c_leases, c_history" -c "SELECT setval('c_pos', 1, false)"
    case $1 in
        a|a1|b|e|f) q -c "INSERT INTO $(echo "${1%1}" | tr f a)_tasks (namespace, queue, payload) SELECT 'ns', 'q', '{\"n\": 1}' FROM generate_series(1, $2)" ;;
        c|d) q -c "INSERT INTO c_ready (seq, namespace, queue, payload) SELECT g, 'ns', 'q', '{\"n\": 1}' FROM generate_series(1, $2) g" ;;
    esac
    q -c "VACUUM (ANALYZE) a_tasks, b_tasks, e_tasks, b_history, c_ready, c_leases, c_history" -c "CHECKPOINT"
}
dead() { q -c "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname LIKE '$(echo "${1%1}" | tr df ca)\_%'"; }
lsn() { q -c "SELECT pg_current_wal_lsn()"; }
q -f "$here/schema.sql" >/dev/null 2>&1
phases=${PHASES:-drain pinned}
# The script pgbench runs for shape $1 in the pinned phase: as written, or with its quoted
# variables made parameters for the prepared protocol.
script() {
    if [ "${PREPARED:-0}" = 1 ]; then
        sed -e "s/':ids'/:ids/" -e "s/interval ':lag'/:lag::interval/" "$here/$1.sql" > "/tmp/run-$1.sql"; echo "/tmp/run-$1.sql"
    else
        echo "$here/$1.sql"
    fi
}
pinned_mode=(); [ "${PREPARED:-0}" = 1 ] && pinned_mode=(-M prepared)
export PGOPTIONS="${PGOPTIONS:-}"; [ "${PREPARED:-0}" = 1 ] && PGOPTIONS="$PGOPTIONS -c plan_cache_mode=force_generic_plan"

case " $phases " in *" drain "*)
echo "# drain: shape clients batch round tasks_per_s wal_bytes_per_task"
for cfg in "8 16" "8 100" "32 16"; do
    set -- $cfg
    for round in $(seq "$rounds"); do
        for s in $shapes; do
            fill "$s" "$fill" >/dev/null
            before=$(lsn)
            pgbench "$url" -n -c "$1" -j 2 -T "$secs" -D k="$2" -D ids='{}' -D floor=0 -D lag='100 ms' -D fc=-infinity -D fid=0 -f "$here/$s.sql" >/dev/null 2>&1
            n=$(ended "$s")
            wal=$(q -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$before')")
            dry=; [ "$n" -ge "$fill" ] && dry=" (ran dry: a lower bound)"
            echo "drain $s c$1 k$2 $round $((n / secs)) $((wal / (n > 0 ? n : 1)))$dry"
        done
    done
done ;;
esac

case " $phases " in *" pinned "*)
echo "# pinned: shape phase window claim_ms release_ms; then dead tuples per task"
for s in $shapes; do
    fill "$s" 200000 >/dev/null
    for phase in moving pinned; do
        holder=
        if [ "$phase" = pinned ]; then
            psql "$url" -XAtq -c "BEGIN; SELECT txid_current(); SELECT pg_sleep($((windows * 10 + 30)));" >/dev/null 2>&1 &
            holder=$!
            sleep 1
            dead_before=$(dead "$s"); ended_before=$(ended "$s")
        fi
        for w in $(seq "$windows"); do
            # e's floor is each client's memory: carried from one window's pgbench to the next.
            floor=0; [ "$s" = e ] && floor=$(q -c "SELECT coalesce(max(id) + 1, 0) FROM e_tasks WHERE state = 'released'")
            fc=-infinity; fid=0
            if [ "$s" = f ]; then
                last=$(q -c "SELECT created_at, id FROM a_tasks WHERE state = 'released' ORDER BY created_at DESC, id DESC LIMIT 1")
                [ -n "$last" ] && { fc=${last%|*}; fid=${last#*|}; }
            fi
            out=$(pgbench "$url" -n "${pinned_mode[@]}" -c 4 -j 2 -R 500 -T 10 -r -D k=1 -D ids='{}' -D floor="$floor" -D lag='100 ms' -D fc="$fc" -D fid="$fid" -f "$(script "$s")" 2>&1)
            claim=$(echo "$out" | awk '/WITH/ && !/DELETE/ {print $1; exit}')
            release=$(echo "$out" | awk '/UPDATE [ae]_tasks SET state = .released|WITH d AS/ {print $1; exit}')
            echo "pinned $s $phase $w $claim $release"
        done
        if [ -n "$holder" ]; then
            d=$(( $(dead "$s") - dead_before )); e=$(( $(ended "$s") - ended_before ))
            echo "dead $s $d tuples for $e tasks: $(echo "scale=2; $d / $e" | bc)"
            kill "$holder" 2>/dev/null || true
            q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()" >/dev/null
        fi
    done
done ;;
esac
