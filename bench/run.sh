#!/usr/bin/env bash
# Side-by-side comparison of xgroup's adapters with redis-rs and redis-py consumers.
#
#   bench/run.sh            throughput table (default)
#   bench/run.sh latency    produce->handler latency at a steady rate
#   bench/run.sh scale      1, 2 and 4 xgroup-tokio consumer processes in one group
#   bench/run.sh memory     peak RSS draining a small and a big backlog (must not grow)
#   bench/run.sh tls        throughput over TLS and in plaintext, side by side, and
#                           what TLS costs each client per million messages
#   bench/run.sh scale-cluster  one consumer process draining a sharded stream on a
#                           1-primary and a 2-primary local cluster, against the
#                           single-server ceiling; redis-rs's cluster client alongside
#   bench/run.sh several    one consumer process reading several streams on one
#                           server (one combined read), against one stream; with
#                           BENCH_BASELINE, that revision's xgroup-tokio alongside
#
# Builds everything in release, starts its own redis-server on a free
# loopback port (never the machine's 6379), and measures every client the
# same way (bench_measure: wall time, CPU time, peak RSS, server CPU time).
#
# Clients (every one takes --url --stream --group --consumer --count
# --messages, creates its group at 0 if missing, and prints
# `consumed=M secs=S rate=R msgs/s` last): xgroup-tokio, xgroup-async-std,
# xgroup-blocking (the adapters' throughput examples), "redis-rs idiomatic",
# "redis-rs pipelined" (bench/src/bin/redisrs_consumer.rs), "redis-py
# idiomatic", "redis-py pipelined" (bench/py/redispy_consumer.py, redis-py
# with hiredis). The redis-py clients run in a venv that this script makes
# once under $CARGO_TARGET_DIR/bench-venv (python3 -m venv, then pip install of
# the pinned redis and hiredis from PyPI; without venv support it falls back
# to pip install --target; with neither, it says so and skips them).
#
# Throughput: for each COUNT, ONE stream is filled once (xgroup-tokio's
# throughput example with --fill, which then drains it through a throwaway
# group "fill"); every measured run then drains that same backlog through a
# group of its own, created at 0. Clients run interleaved, BENCH_REPS times.
# The stream holds HEADROOM more entries than a run consumes: xgroup's
# consumers keep a read in flight, and had the backlog run dry that read would
# be an XREADGROUP BLOCK 1000 which a graceful stop waits out (~1 s that would
# be charged to the run); the redis-rs and redis-py loops issue no read after
# the last ack.
# The table's ratios are to redis-rs idiomatic and to redis-py pipelined.
#
# TLS: the server also serves TLS (--tls-port, certificates made by
# bench_certs as the tests make theirs: a CA, a server certificate for
# 127.0.0.1); one stream is filled once (BENCH_MESSAGES + HEADROOM); each
# client drains it at COUNT 1000 in plaintext and over TLS (rediss://,
# --tls-ca-cert), interleaved, BENCH_REPS times, each run through a group of
# its own. Clients: xgroup-tokio and redis-rs idiomatic (redis-rs's
# tls-rustls, ring) by default; any but redis-py's. bench_table then gives
# the ratios over TLS and, per client, the CPU-s per million messages TLS
# adds to the plaintext run's.
#
# Scale-cluster: how far one consumer process goes past one server when the
# stream is sharded over a cluster. Three setups, all up at once: (a) a
# 1-primary cluster, (b) a 2-primary cluster (no replicas; built here:
# redis-server --cluster-enabled yes on free ports, CLUSTER ADDSLOTS, MEET,
# then cluster_state:ok awaited), (c) one plain server (the ceiling). Each
# redis-server is pinned with taskset: (b)'s first primary on core 0, its
# second on core 1; (a)'s and (c)'s on core 0. (a) and (b) hold the sharded
# stream of BENCH_SHARDS shards ({sc:0} ...), filled by xgroup-tokio's
# throughput example with --fill --shards (round-robin, a pipeline per
# shard); (c) one stream. Each setup holds BENCH_MESSAGES + spare entries
# (HEADROOM per shard, so that no shard runs dry before a run ends).
# Clients, each drained BENCH_MESSAGES at COUNT 1000 through a group of its
# own, interleaved, BENCH_REPS times: xgroup-tokio (the throughput example,
# --shards on the clusters, the library's defaults otherwise; BENCH_IN_FLIGHT
# sets its --in-flight) and redis-rs (redisrs_consumer: the idiomatic loop on
# (c); on the clusters redis-rs's ClusterClient, one XREADGROUP and one XACK
# per shard in turn). The table gives each one's median rate and its ratio
# to xgroup-tokio on one server (the ceiling) and to redis-rs on one server;
# server% sums the setup's servers (up to 200% for (b)). A second table says
# where the time went: each client's CPU use (client CPU-s / wall-s) and how
# long the servers had work but waited for a CPU (runnable, not running:
# another process had the core), so that a run on a busy machine shows it.
# Needs taskset and redis-cli (REDIS_CLI, default beside REDIS_SERVER).
#
# Several: one server holds one stream and a sharded stream of BENCH_SEVERAL
# (default 4) streams, each with BENCH_MESSAGES + spare entries; xgroup-tokio
# (the throughput example, --shards for the several) drains each at COUNT
# 1000 and at the library's default, interleaved, BENCH_REPS times, each run
# through its own group; with BENCH_BASELINE, xgroup-tokio@base drains the
# several streams too. The table's ratios are to one stream at that COUNT.
#
# Memory: two streams are filled (BENCH_MEMORY_SMALL and BENCH_MEMORY_BIG
# three-field messages, + HEADROOM); each client drains both at COUNT 1000,
# once each, through groups of its own; the table gives each drain's peak RSS
# (VmHWM) and the growth from the small backlog to the big one, which must
# stay near zero (tests/resources.rs asserts < 8 MB for 200k vs 1M).
#
# Environment:
#   BENCH_MESSAGES      messages at COUNT 1000 (default 1000000)
#   BENCH_MESSAGES_100  messages at every other COUNT (default 30% of BENCH_MESSAGES)
#   BENCH_COUNTS        the COUNTs of throughput mode (default "1000 100 default"; e.g.
#                       "1000 100 10"). "default": the xgroup clients run with every
#                       option at the library's default (no --count), the references
#                       at COUNT 100, the library's default count
#   BENCH_REPS          runs per client and COUNT, or latency runs (default 2)
#   BENCH_CLIENTS       clients to run (throughput and memory modes), space- or
#                       comma-separated; in a space-separated list write a
#                       name's spaces as '-' ("xgroup-tokio redis-py-pipelined");
#                       default: all seven (throughput), the three xgroup
#                       adapters (memory)
#   BENCH_MEMORY_SMALL, BENCH_MEMORY_BIG  memory mode's backlogs (default
#                       1000000 and 10000000)
#   BENCH_RATE, BENCH_SECS  latency mode's producer (default 10000 msgs/s, 10 s)
#   BENCH_TOKIO_RUNTIME     latency mode: multi-thread (default) or current-thread
#   BENCH_BASELINE      a git revision: its three throughput examples are built
#                       too (from `git archive`, in $CARGO_TARGET_DIR/baseline) and
#                       run as the clients xgroup-tokio@base, xgroup-async-std@base
#                       and xgroup-blocking@base (throughput mode, default clients
#                       too), so a change is measured side by side with what it
#                       changed, in one run
#   BENCH_PYTHON        interpreter for the redis-py venv (default python3)
#   BENCH_SHARDS        scale-cluster mode's shards (default 8)
#   BENCH_IN_FLIGHT     scale-cluster mode: xgroup-tokio's --in-flight (default:
#                       the library's)
#   REDIS_SERVER        server binary (default /usr/bin/redis-server)
#   REDIS_CLI           scale-cluster mode's redis-cli (default: beside REDIS_SERVER)
#   CARGO_TARGET_DIR    build directory (default target/); BENCH_JOBS: -j (2)
set -euo pipefail

MODE=${1:-throughput}
case "$MODE" in throughput | latency | scale | memory | tls | scale-cluster | several) ;; *)
    echo "usage: $0 [throughput|latency|scale|memory|tls|scale-cluster|several]" >&2
    exit 2
    ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
M=${BENCH_MESSAGES:-1000000}
M100=${BENCH_MESSAGES_100:-$((M * 3 / 10))}
read -ra COUNTS <<<"${BENCH_COUNTS:-1000 100 default}"
DEFAULT_COUNT=100 # the library's default count (ConsumerConfigBuilder::count)
REPS=${BENCH_REPS:-2}
RATE=${BENCH_RATE:-10000}
SECS=${BENCH_SECS:-10}
MEM_SMALL=${BENCH_MEMORY_SMALL:-1000000}
MEM_BIG=${BENCH_MEMORY_BIG:-10000000}
PYTHON=${BENCH_PYTHON:-python3}
TOKIO_RUNTIME=${BENCH_TOKIO_RUNTIME:-multi-thread}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
JOBS=${BENCH_JOBS:-2}
BASELINE=${BENCH_BASELINE:-}
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xgroup-bench.XXXXXX")
BIN=$WORK/bin
mkdir -p "$BIN"
SERVER_PID=
NODE_PIDS=() # scale-cluster mode's cluster nodes
cleanup() {
    for pid in $SERVER_PID "${NODE_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "== $*" >&2; }

# --- clients -------------------------------------------------------------------
ALL_CLIENTS=("xgroup-tokio" "xgroup-async-std" "xgroup-blocking" "redis-rs idiomatic"
    "redis-rs pipelined" "redis-py idiomatic" "redis-py pipelined")
if [ -n "$BASELINE" ]; then
    ALL_CLIENTS+=("xgroup-tokio@base" "xgroup-async-std@base" "xgroup-blocking@base")
fi
case "$MODE" in
throughput) DEFAULT_CLIENTS=("${ALL_CLIENTS[@]}") ;;
memory) DEFAULT_CLIENTS=("xgroup-tokio" "xgroup-async-std" "xgroup-blocking") ;;
tls) DEFAULT_CLIENTS=("xgroup-tokio" "redis-rs idiomatic") ;;
*) DEFAULT_CLIENTS=() ;;
esac
# BENCH_CLIENTS -> CLIENTS (in the order given; a name's spaces may be '-').
CLIENTS=()
if [ -z "${BENCH_CLIENTS:-}" ] || [ "${#DEFAULT_CLIENTS[@]}" = 0 ]; then
    CLIENTS=("${DEFAULT_CLIENTS[@]}") # latency and scale modes have their own
else
    if [[ $BENCH_CLIENTS == *,* ]]; then
        IFS=, read -ra wanted <<<"$BENCH_CLIENTS"
    else
        read -ra wanted <<<"$BENCH_CLIENTS"
    fi
    for w in "${wanted[@]}"; do
        w=${w#"${w%%[![:space:]]*}"} # trim
        w=${w%"${w##*[![:space:]]}"}
        [ -n "$w" ] || continue
        found=
        for c in "${ALL_CLIENTS[@]}"; do
            if [ "${c// /-}" = "${w// /-}" ]; then found=$c; fi
        done
        if [ -z "$found" ]; then
            echo "BENCH_CLIENTS: no client \"$w\"; the clients are:" >&2
            printf '  %s\n' "${ALL_CLIENTS[@]}" >&2
            exit 2
        fi
        for c in "${CLIENTS[@]}"; do [ "$c" != "$found" ] || continue 2; done
        CLIENTS+=("$found")
    done
fi
wants_redispy() {
    for c in "${CLIENTS[@]}"; do [[ $c != redis-py* ]] || return 0; done
    return 1
}
if [ "$MODE" = tls ] && wants_redispy; then
    echo "BENCH_CLIENTS: the redis-py clients have no TLS mode here" >&2
    exit 2
fi
wants_client() { # NAME -> it is one of CLIENTS
    for c in "${CLIENTS[@]}"; do [ "$c" != "$1" ] || return 0; done
    return 1
}

# The redis-py clients' interpreter: a venv under the target directory, made
# once and reused while it imports the pinned versions with hiredis in use.
REDISPY_VERSION=8.1.0
HIREDIS_VERSION=3.5.0
PY_PINS=("redis==$REDISPY_VERSION" "hiredis==$HIREDIS_VERSION")
VENV=$TARGET/bench-venv
PYLIB=$TARGET/bench-pylib # the fallback: pip install --target, run with PYTHONPATH
PY_RUN=()                 # the command that runs a redis-py client's script
py_ok() { # COMMAND... -> it imports the pinned redis-py with hiredis
    "$@" -c "import sys, redis, redis.utils, hiredis
sys.exit(not (redis.__version__ == '$REDISPY_VERSION' and hiredis.__version__ == '$HIREDIS_VERSION'
              and redis.utils.HIREDIS_AVAILABLE))" 2>/dev/null
}
setup_redispy() { # sets PY_RUN, or returns 1 having said why
    local pip_flags=(-q --disable-pip-version-check --no-input)
    local -x PIP_ROOT_USER_ACTION=ignore # pip as root, on purpose, into a venv or --target
    if py_ok "$VENV/bin/python"; then
        PY_RUN=("$VENV/bin/python")
        return 0
    fi
    if py_ok env PYTHONPATH="$PYLIB" "$PYTHON"; then
        PY_RUN=(env "PYTHONPATH=$PYLIB" "$PYTHON")
        return 0
    fi
    command -v "$PYTHON" >/dev/null || {
        echo "no $PYTHON (apt-get install python3 python3-venv, or set BENCH_PYTHON)" >&2
        return 1
    }
    log "redis-py: making a venv in $VENV ($("$PYTHON" --version 2>&1); ${PY_PINS[*]})"
    rm -rf "$VENV"
    if "$PYTHON" -m venv "$VENV" >"$WORK/venv.log" 2>&1; then
        if "$VENV/bin/python" -m pip install "${pip_flags[@]}" "${PY_PINS[@]}" >&2 &&
            py_ok "$VENV/bin/python"; then
            PY_RUN=("$VENV/bin/python")
            return 0
        fi
        echo "pip install ${PY_PINS[*]} into $VENV failed (is PyPI reachable?)" >&2
        rm -rf "$VENV"
        return 1
    fi
    # Debian's python3 has no venv (nor ensurepip) without python3-venv.
    echo "$PYTHON -m venv failed: $(tail -n 3 "$WORK/venv.log" | tr '\n' ' ')" >&2
    rm -rf "$VENV"
    if "$PYTHON" -m pip --version >/dev/null 2>&1; then
        log "redis-py: falling back to pip install --target $PYLIB"
        rm -rf "$PYLIB"
        if "$PYTHON" -m pip install "${pip_flags[@]}" --target "$PYLIB" "${PY_PINS[@]}" >&2 &&
            py_ok env PYTHONPATH="$PYLIB" "$PYTHON"; then
            PY_RUN=(env "PYTHONPATH=$PYLIB" "$PYTHON")
            return 0
        fi
        echo "pip install --target $PYLIB ${PY_PINS[*]} failed" >&2
        rm -rf "$PYLIB"
        return 1
    fi
    echo "no venv and no pip for $PYTHON: apt-get install python3-venv (or python3-pip)," \
        "or set BENCH_PYTHON to an interpreter that has them" >&2
    return 1
}

client_cmd() { # CLIENT -> CMD: the program and its mode flags
    case "$1" in
    xgroup-tokio) CMD=("$BIN/throughput-tokio") ;;
    xgroup-async-std) CMD=("$BIN/throughput-async-std") ;;
    xgroup-blocking) CMD=("$BIN/throughput-blocking") ;;
    xgroup-*@base)
        local adapter=${1#xgroup-}
        CMD=("$BIN/throughput-${adapter%@base}-base")
        ;;
    "redis-rs idiomatic") CMD=("$BIN/redisrs_consumer" --mode idiomatic) ;;
    "redis-rs pipelined") CMD=("$BIN/redisrs_consumer" --mode pipelined) ;;
    "redis-py idiomatic") CMD=("${PY_RUN[@]}" "$ROOT/bench/py/redispy_consumer.py" --mode idiomatic) ;;
    "redis-py pipelined") CMD=("${PY_RUN[@]}" "$ROOT/bench/py/redispy_consumer.py" --mode pipelined) ;;
    esac
}

# --- build (release) ---------------------------------------------------------
# The three adapters' examples share the output name `throughput`: build one
# package at a time and copy the binary right after its build. xgroup-tokio's
# fills the streams; the others are built when they are measured.
for adapter in tokio async-std blocking; do
    if [ "$adapter" != tokio ] && ! wants_client "xgroup-$adapter"; then continue; fi
    log "building xgroup-$adapter's throughput example (release)"
    "$CARGO" build --release -j "$JOBS" -q -p "xgroup-$adapter" --example throughput
    cp "$TARGET/release/examples/throughput" "$BIN/throughput-$adapter"
done
if [ -n "$BASELINE" ]; then
    log "building the throughput examples of $BASELINE (release, from git archive)"
    mkdir -p "$WORK/baseline"
    git -C "$ROOT" archive --format=tar "$BASELINE" | tar -x -C "$WORK/baseline"
    for adapter in tokio async-std blocking; do
        (cd "$WORK/baseline" && CARGO_TARGET_DIR="$TARGET/baseline" \
            "$CARGO" build --release -j "$JOBS" -q -p "xgroup-$adapter" --example throughput)
        cp "$TARGET/baseline/release/examples/throughput" "$BIN/throughput-$adapter-base"
    done
fi
log "building xgroup-bench (release)"
"$CARGO" build --release -j "$JOBS" -q -p xgroup-bench --bins
for b in redisrs_consumer xgroup_latency latency_producer bench_measure bench_table bench_certs; do
    cp "$TARGET/release/$b" "$BIN/$b"
done

SKIPPED=
if wants_redispy && ! setup_redispy; then
    SKIPPED="the redis-py clients (no working Python environment, see above)"
    echo "!! skipping $SKIPPED" >&2
    kept=()
    for c in "${CLIENTS[@]}"; do [[ $c == redis-py* ]] || kept+=("$c"); done
    CLIENTS=("${kept[@]}")
fi

# --- server --------------------------------------------------------------------
[ -x "$REDIS_SERVER" ] || {
    echo "no redis-server at $REDIS_SERVER (apt-get install redis-server, or set REDIS_SERVER)" >&2
    exit 1
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ping() ( # in a subshell: a failed connect must not end the script
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf 'PING\r\n' >&3
    read -r -t 1 reply <&3 || true
    [ "${reply%$'\r'}" = "+PONG" ]
)
PORT=
for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! port_in_use "$p"; then
        PORT=$p
        break
    fi
done
[ -n "$PORT" ] || {
    echo "no free port found" >&2
    exit 1
}
TLS_ARGS=()
if [ "$MODE" = tls ]; then
    TLS_PORT=
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        if [ "$p" != "$PORT" ] && ! port_in_use "$p"; then
            TLS_PORT=$p
            break
        fi
    done
    [ -n "$TLS_PORT" ] || {
        echo "no free port found for TLS" >&2
        exit 1
    }
    CERTS=$WORK/certs
    "$BIN/bench_certs" "$CERTS"
    TLS_ARGS=(--tls-port "$TLS_PORT" --tls-cert-file "$CERTS/server.pem"
        --tls-key-file "$CERTS/server.key" --tls-ca-cert-file "$CERTS/ca.pem"
        --tls-auth-clients no)
fi
PIN=() # scale-cluster mode: the single server on core 0
if [ "$MODE" = scale-cluster ]; then
    command -v taskset >/dev/null || {
        echo "scale-cluster pins each server to a core: no taskset (apt-get install util-linux)" >&2
        exit 1
    }
    [ "$(nproc)" -ge 2 ] || {
        echo "scale-cluster pins servers to cores 0 and 1: this machine has $(nproc) core" >&2
        exit 1
    }
    PIN=(taskset -c 0)
fi
"${PIN[@]}" "$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/server.log" --daemonize no "${TLS_ARGS[@]}" &
SERVER_PID=$!
for _ in $(seq 100); do
    ping 2>/dev/null && break
    sleep 0.1
done
ping 2>/dev/null || {
    echo "redis-server did not start:" >&2
    cat "$WORK/server.log" >&2
    exit 1
}
URL=redis://127.0.0.1:$PORT
log "$("$REDIS_SERVER" --version | cut -d' ' -f1-3) on port $PORT (pid $SERVER_PID)"

machine() {
    echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) ($1)"
}

# --- latency -------------------------------------------------------------------
if [ "$MODE" = latency ]; then
    N=$((RATE * SECS))
    machine "before"
    log "latency: producer at $RATE msgs/s for $SECS s; both consumers read the same stream, each through its own group, at once; $REPS runs"
    : >"$WORK/latency-x"
    : >"$WORK/latency-r"
    for rep in $(seq "$REPS"); do
        stream=lat-$rep
        "$BIN/xgroup_latency" --url "$URL" --stream "$stream" --group g-xgroup --consumer c \
            --runtime "$TOKIO_RUNTIME" \
            --count 1000 --messages "$N" --timeout-secs $((SECS + 30)) >>"$WORK/latency-x" &
        X=$!
        "$BIN/redisrs_consumer" --latency --url "$URL" --stream "$stream" --group g-redisrs \
            --consumer c --count 1000 --messages "$N" --timeout-secs $((SECS + 30)) >>"$WORK/latency-r" &
        R=$!
        sleep 1.5 # both groups exist (created at 0 on the empty stream) before the first XADD
        "$BIN/latency_producer" --url "$URL" --stream "$stream" --rate "$RATE" --secs "$SECS" >&2
        wait "$X"
        wait "$R"
    done
    machine "after"
    echo "produce->handler latency (sent_ns field, CLOCK_REALTIME, vs the clock when the handler/loop sees it)"
    echo "$N messages per run at $RATE msgs/s; consumers run at the same time on their own groups; one line per run:"
    cat "$WORK/latency-x" "$WORK/latency-r"
    exit 0
fi

# --- scale ---------------------------------------------------------------------
if [ "$MODE" = scale ]; then
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
    ticks_per_s=$(getconf CLK_TCK)
    stream=scale
    machine "before"
    log "scale: filling stream $stream with $((M + 40000)) messages"
    "$BIN/throughput-tokio" --url "$URL" --stream "$stream" --group fill --consumer f \
        --count 1000 --messages $((M + 40000)) --fill >/dev/null
    echo "scale: xgroup-tokio consumer processes in one group draining $M messages (COUNT 1000), each through the same group"
    printf '%-10s %12s %10s %10s\n' consumers msgs/s secs server%
    for k in 1 2 4; do
        group=g-scale-$k
        t0=$(date +%s.%N)
        c0=$(cpu_ticks)
        pids=()
        for i in $(seq "$k"); do
            "$BIN/throughput-tokio" --url "$URL" --stream "$stream" --group "$group" --consumer "c$i" \
                --count 1000 --messages $((M / k)) >"$WORK/scale-$k-$i" &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid"; done
        t1=$(date +%s.%N)
        c1=$(cpu_ticks)
        acked=$(awk -F'[= ]' '/^consumed=/{s += $2} END {print s}' "$WORK"/scale-"$k"-*)
        awk -v k="$k" -v n="$acked" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v hz="$ticks_per_s" \
            'BEGIN { w = t1 - t0; printf "%-10s %12.0f %10.3f %9.0f%%\n", k, n / w, w, 100 * c / hz / w }'
    done
    machine "after"
    exit 0
fi

HEADROOM=10000 # > in-flight batches x COUNT, see the top

# --- scale-cluster -------------------------------------------------------------
if [ "$MODE" = scale-cluster ]; then
    SHARDS=${BENCH_SHARDS:-8}
    REDIS_CLI=${REDIS_CLI:-$(dirname "$REDIS_SERVER")/redis-cli}
    [ -x "$REDIS_CLI" ] || {
        echo "no redis-cli at $REDIS_CLI (apt-get install redis-tools, or set REDIS_CLI)" >&2
        exit 1
    }
    IN_FLIGHT=()
    if [ -n "${BENCH_IN_FLIGHT:-}" ]; then IN_FLIGHT=(--in-flight "$BENCH_IN_FLIGHT"); fi
    cli() { # PORT ARGS...
        local port=$1
        shift
        "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"
    }
    TAKEN=" $PORT "
    free_port() { # sets FREE: a port free with its cluster bus port (+10000), not yet taken
        local p
        FREE=
        for _ in $(seq 100); do
            p=$((20000 + RANDOM % 20000))
            case "$TAKEN" in *" $p "* | *" $((p + 10000)) "* | *" $((p - 10000)) "*) continue ;; esac
            if ! port_in_use "$p" && ! port_in_use $((p + 10000)); then
                FREE=$p
                TAKEN="$TAKEN$p "
                return 0
            fi
        done
        echo "no free port found for a cluster node" >&2
        exit 1
    }
    start_cluster() { # NAME CORE...: one primary per CORE, pinned to it, the slots split
        # evenly in order; sets CLUSTER_URL and CLUSTER_PIDS (comma-separated)
        local name=$1
        shift
        local cores=("$@") ports=() pids=() n=$# i port dir ok
        for i in "${!cores[@]}"; do
            free_port
            port=$FREE
            dir=$WORK/$name-$i
            mkdir -p "$dir"
            taskset -c "${cores[$i]}" "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 \
                --save '' --appendonly no --cluster-enabled yes \
                --cluster-config-file "$dir/nodes.conf" --dir "$dir" \
                --logfile "$dir/server.log" --daemonize no &
            NODE_PIDS+=($!)
            pids+=($!)
            ports+=("$port")
        done
        for i in "${!ports[@]}"; do
            for _ in $(seq 100); do
                [ "$(cli "${ports[$i]}" PING 2>/dev/null)" = PONG ] && break
                sleep 0.1
            done
            [ "$(cli "${ports[$i]}" PING 2>/dev/null)" = PONG ] || {
                echo "cluster node ${ports[$i]} did not start:" >&2
                cat "$WORK/$name-$i/server.log" >&2
                exit 1
            }
            cli "${ports[$i]}" CLUSTER SET-CONFIG-EPOCH $((i + 1)) >/dev/null
            # ADDSLOTS with every slot (Redis 6.2 has no ADDSLOTSRANGE).
            # shellcheck disable=SC2046
            ok=$(cli "${ports[$i]}" CLUSTER ADDSLOTS $(seq $((i * 16384 / n)) $(((i + 1) * 16384 / n - 1))))
            [ "$ok" = OK ] || {
                echo "CLUSTER ADDSLOTS on ${ports[$i]}: $ok" >&2
                exit 1
            }
        done
        for port in "${ports[@]:1}"; do
            cli "$port" CLUSTER MEET 127.0.0.1 "${ports[0]}" >/dev/null
        done
        settled() { # every node: state ok, every slot served, every node known
            local port info
            for port in "${ports[@]}"; do
                info=$(cli "$port" CLUSTER INFO | tr -d '\r')
                grep -qx cluster_state:ok <<<"$info" &&
                    grep -qx cluster_slots_ok:16384 <<<"$info" &&
                    grep -qx "cluster_known_nodes:$n" <<<"$info" || return 1
            done
        }
        for _ in $(seq 200); do
            settled && break
            sleep 0.1
        done
        settled || {
            echo "cluster $name did not settle:" >&2
            cli "${ports[0]}" CLUSTER INFO >&2
            exit 1
        }
        CLUSTER_URL=redis+cluster://$(printf '127.0.0.1:%s,' "${ports[@]}")
        CLUSTER_URL=${CLUSTER_URL%,}
        CLUSTER_PIDS=$(
            IFS=,
            echo "${pids[*]}"
        )
        log "cluster $name: ${#ports[@]} primaries on cores ${cores[*]}: $CLUSTER_URL"
    }
    start_cluster c1 0
    URL_C1=$CLUSTER_URL
    PIDS_C1=$CLUSTER_PIDS
    start_cluster c2 0 1
    URL_C2=$CLUSTER_URL
    PIDS_C2=$CLUSTER_PIDS
    SETUPS=("1 server" "1-primary cluster" "2-primary cluster")
    setup() { # SETUP -> S_URL S_PIDS S_STREAM (the flags naming the stream)
        case "$1" in
        "1 server") S_URL=$URL S_PIDS=$SERVER_PID S_STREAM=(--stream sc-plain) ;;
        "1-primary cluster") S_URL=$URL_C1 S_PIDS=$PIDS_C1 S_STREAM=(--stream sc --shards "$SHARDS") ;;
        "2-primary cluster") S_URL=$URL_C2 S_PIDS=$PIDS_C2 S_STREAM=(--stream sc --shards "$SHARDS") ;;
        esac
    }
    machine "before"
    START=$(date +%s)
    for s in "${SETUPS[@]}"; do
        setup "$s"
        spare=$HEADROOM
        [ "${S_STREAM[2]:-}" != --shards ] || spare=$((HEADROOM * SHARDS))
        log "scale-cluster: filling ${S_STREAM[*]} on the $s with $M+$spare messages (drained once by group 'fill')"
        "$BIN/throughput-tokio" --url "$S_URL" "${S_STREAM[@]}" --group fill --consumer f \
            --count 1000 --messages $((M + spare)) --fill >/dev/null
    done
    RESULTS=$WORK/results.tsv
    : >"$RESULTS"
    for rep in $(seq "$REPS"); do
        for s in "${SETUPS[@]}"; do
            setup "$s"
            g=${s// /-}-$rep
            log "scale-cluster run $rep: xgroup-tokio on the $s"
            "$BIN/bench_measure" "xgroup-tokio / $s" 1000 "$S_PIDS" -- "$BIN/throughput-tokio" \
                --url "$S_URL" "${S_STREAM[@]}" --group "g-x-$g" --consumer c --count 1000 \
                "${IN_FLIGHT[@]}" --messages "$M" >>"$RESULTS"
            log "scale-cluster run $rep: redis-rs on the $s"
            "$BIN/bench_measure" "redis-rs / $s" 1000 "$S_PIDS" -- "$BIN/redisrs_consumer" \
                --mode idiomatic --url "$S_URL" "${S_STREAM[@]}" --group "g-r-$g" --consumer c \
                --count 1000 --messages "$M" >>"$RESULTS"
        done
    done
    machine "after"
    echo "scale-cluster: one consumer process drains $M messages (COUNT 1000) from one server's stream,"
    echo "and from a sharded stream of $SHARDS shards on a 1-primary and a 2-primary cluster; $REPS runs each,"
    echo "interleaved, each through its own group; servers pinned (1 server and the 1-primary cluster: core 0;"
    options="with the library's defaults"
    if [ -n "${IN_FLIGHT[*]}" ]; then options="with ${IN_FLIGHT[*]}"; fi
    echo "2-primary cluster: cores 0 and 1); xgroup-tokio $options; values are medians;"
    echo "took $(($(date +%s) - START)) s"
    echo "server% = the setup's servers' CPU-s / client wall-s (summed); cpu-s/M = client CPU-s per million messages"
    "$BIN/bench_table" --baseline "xgroup-tokio / 1 server=vs 1 server" \
        --baseline "redis-rs / 1 server=vs rr 1 server" "$RESULTS"
    echo
    echo "where the time went (medians): client% = client CPU-s / wall-s; server% as above; server wait% ="
    echo "the time the setup's servers had work but waited for a CPU (their main threads runnable, not"
    echo "running: /proc/PID/schedstat) / wall-s, summed; server% + server wait% near 100% per server: the"
    echo "servers were never idle waiting for the client"
    awk -F'\t' '
        function median(key, m,    a, b, t, v) {
            for (a = 1; a <= m; a++) v[a] = x[key, a]
            for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
            return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
        }
        {
            if (!($1 in n)) order[++k] = $1
            i = ++n[$1]
            x[$1 "c", i] = 100 * $6 / $5; x[$1 "s", i] = 100 * $8 / $5; x[$1 "w", i] = 100 * $9 / $5
        }
        END {
            printf "  %-34s %8s %8s %13s\n", "client", "client%", "server%", "server wait%"
            for (i = 1; i <= k; i++) {
                c = order[i]
                printf "  %-34s %7.0f%% %7.0f%% %12.0f%%\n", c, median(c "c", n[c]), median(c "s", n[c]), median(c "w", n[c])
            }
        }' "$RESULTS"
    exit 0
fi

# --- several streams on one server ---------------------------------------------
if [ "$MODE" = several ]; then
    N=${BENCH_SEVERAL:-4}
    machine "before"
    START=$(date +%s)
    log "several: filling stream sv-one with $M+$HEADROOM and $N streams (sharded stream sv) with $M+$((HEADROOM * N))"
    "$BIN/throughput-tokio" --url "$URL" --stream sv-one --group fill --consumer f \
        --count 1000 --messages $((M + HEADROOM)) --fill >/dev/null
    "$BIN/throughput-tokio" --url "$URL" --stream sv --shards "$N" --group fill --consumer f \
        --count 1000 --messages $((M + HEADROOM * N)) --fill >/dev/null
    RUNS=("xgroup-tokio / 1 stream" "xgroup-tokio / $N streams")
    if [ -n "$BASELINE" ]; then RUNS+=("xgroup-tokio@base / $N streams"); fi
    RESULTS=$WORK/results.tsv
    : >"$RESULTS"
    for count in 1000 default; do
        c=(--count "$count")
        if [ "$count" = default ]; then c=(); fi
        for rep in $(seq "$REPS"); do
            for run in "${RUNS[@]}"; do
                bin=$BIN/throughput-tokio
                if [[ $run == *@base* ]]; then bin=$BIN/throughput-tokio-base; fi
                stream=(--stream sv --shards "$N")
                if [[ $run == *"1 stream" ]]; then stream=(--stream sv-one); fi
                g=${run//[^a-z0-9]/-}-$count-$rep
                log "several run $rep: $run, COUNT $count"
                "$BIN/bench_measure" "$run" "$count" "$SERVER_PID" -- "$bin" --url "$URL" \
                    "${stream[@]}" --group "g-$g" --consumer c "${c[@]}" --messages "$M" >>"$RESULTS"
            done
        done
    done
    machine "after"
    echo "several: one xgroup-tokio consumer process drains $M messages from one stream and from $N streams"
    echo "on one server (one combined XREADGROUP ... STREAMS for all), at COUNT 1000 and the library's"
    echo "default; $REPS runs each, interleaved, each through its own group; values are medians;"
    echo "took $(($(date +%s) - START)) s"
    echo "server% = server CPU-s / client wall-s; cpu-s/M = client CPU-s per million messages"
    "$BIN/bench_table" --baseline "xgroup-tokio / 1 stream=vs 1 stream" "$RESULTS"
    exit 0
fi

# --- throughput and memory -----------------------------------------------------
[ "${#CLIENTS[@]}" -gt 0 ] || {
    echo "no client left to run" >&2
    exit 1
}
fill() { # STREAM N: N+HEADROOM entries, drained once by group 'fill'
    log "filling stream $1 with $2+$HEADROOM messages (xgroup-tokio --fill, drained once by group 'fill')"
    "$BIN/throughput-tokio" --url "$URL" --stream "$1" --group fill --consumer f \
        --count 1000 --messages $(($2 + HEADROOM)) --fill >/dev/null
}
measure() { # CLIENT COUNT STREAM GROUP N: one bench_measure record on stdout
    client_cmd "$1"
    # COUNT "default": xgroup's clients with the library's defaults (no
    # --count), the references at the library's default count.
    local count=(--count "$2")
    if [ "$2" = default ]; then
        case "$1" in
        xgroup-*) count=() ;;
        *) count=(--count "$DEFAULT_COUNT") ;;
        esac
    fi
    "$BIN/bench_measure" "$1" "$2" "$SERVER_PID" -- "${CMD[@]}" \
        --url "$URL" --stream "$3" --group "$4" --consumer c "${count[@]}" --messages "$5"
}
measure_tls() { # the same over TLS, recorded as "CLIENT over TLS"
    client_cmd "$1"
    "$BIN/bench_measure" "$1 over TLS" "$2" "$SERVER_PID" -- "${CMD[@]}" \
        --url "rediss://127.0.0.1:$TLS_PORT" --tls-ca-cert "$CERTS/ca.pem" \
        --stream "$3" --group "$4" --consumer c --count "$2" --messages "$5"
}
note_skipped() { if [ -n "$SKIPPED" ]; then echo "skipped: $SKIPPED"; fi; }

# --- memory --------------------------------------------------------------------
if [ "$MODE" = memory ]; then
    machine "before"
    START=$(date +%s)
    fill mem-small "$MEM_SMALL"
    fill mem-big "$MEM_BIG"
    : >"$WORK/mem-small.tsv"
    : >"$WORK/mem-big.tsv"
    for client in "${CLIENTS[@]}"; do
        for size in small big; do
            if [ $size = small ]; then n=$MEM_SMALL; else n=$MEM_BIG; fi
            log "memory: $client draining $n messages"
            measure "$client" 1000 "mem-$size" "g-mem-${client// /-}" "$n" >>"$WORK/mem-$size.tsv"
        done
    done
    machine "after"
    echo "memory: peak RSS (VmHWM) of one drain of a pre-filled backlog at COUNT 1000, $MEM_SMALL and $MEM_BIG messages"
    echo "(+$HEADROOM spare entries each), each client through its own group; growth = big - small; took $(($(date +%s) - START)) s"
    note_skipped
    awk -F'\t' '
        FNR == 1 { file++ }
        {
            if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
            rss[$1, file] = $7 / 1048576; rate[$1, file] = $4; msgs[$1, file] = $3
        }
        END {
            printf "%-20s %10s %12s %10s %12s\n", "client", "messages", "peak RSS MB", "msgs/s", "growth MB"
            for (i = 1; i <= n; i++) {
                c = order[i]
                for (f = 1; f <= 2; f++) {
                    if (!((c, f) in rss)) continue
                    d = rss[c, 2] - rss[c, 1]
                    if (d > -0.05 && d < 0.05) d = 0 # no "-0.0"
                    g = (f == 2 && (c, 1) in rss) ? sprintf("%+.1f", d) : ""
                    printf "%-20s %10d %12.1f %10.0f %12s\n", c, msgs[c, f], rss[c, f], rate[c, f], g
                }
            }
        }' "$WORK/mem-small.tsv" "$WORK/mem-big.tsv"
    exit 0
fi

# --- tls -----------------------------------------------------------------------
if [ "$MODE" = tls ]; then
    RESULTS=$WORK/results.tsv
    : >"$RESULTS"
    machine "before"
    START=$(date +%s)
    fill bench-tls "$M"
    for rep in $(seq "$REPS"); do
        for client in "${CLIENTS[@]}"; do
            log "TLS run $rep: $client in plaintext"
            measure "$client" 1000 bench-tls "g-${client// /-}-$rep" "$M" >>"$RESULTS"
            log "TLS run $rep: $client over TLS"
            measure_tls "$client" 1000 bench-tls "g-${client// /-}-tls-$rep" "$M" >>"$RESULTS"
        done
    done
    machine "after"
    echo "tls: $REPS runs per client and transport, interleaved; each drains the same pre-filled backlog"
    echo "(+$HEADROOM spare entries) of $M messages at COUNT 1000 through its own group, in plaintext"
    echo "and over TLS (rustls with ring in both clients, a P-256 server certificate made by"
    echo "bench_certs); values are medians; took $(($(date +%s) - START)) s"
    echo "server% = server CPU-s / client wall-s; cpu-s/M = client CPU-s per million messages; RSS = peak VmHWM"
    "$BIN/bench_table" "$RESULTS"
    exit 0
fi

# --- throughput ----------------------------------------------------------------
RESULTS=$WORK/results.tsv
: >"$RESULTS"
machine "before"
START=$(date +%s)
for count in "${COUNTS[@]}"; do
    case "$count" in default) ;; '' | *[!0-9]* | 0)
        echo "BENCH_COUNTS: not a COUNT (nor \"default\"): \"$count\"" >&2
        exit 2
        ;;
    esac
    if [ "$count" = 1000 ]; then n=$M; else n=$M100; fi
    stream=bench-c$count
    fill "$stream" "$n"
    for rep in $(seq "$REPS"); do
        for client in "${CLIENTS[@]}"; do
            log "COUNT $count run $rep: $client"
            measure "$client" "$count" "$stream" "g-${client// /-}-$rep" "$n" >>"$RESULTS"
        done
    done
done
machine "after"
echo "throughput: $REPS runs per client, interleaved; each drains the same pre-filled backlog (+$HEADROOM spare entries) through its own group"
echo "COUNT 1000: $M messages, other COUNTs (${COUNTS[*]}): $M100 messages; values are medians; took $(($(date +%s) - START)) s"
echo "COUNT default: xgroup with every option at the library's default, the references at COUNT $DEFAULT_COUNT"
echo "server% = server CPU-s / client wall-s; cpu-s/M = client CPU-s per million messages; RSS = peak VmHWM"
if [ -n "${PY_RUN[*]}" ]; then
    echo "redis-py $REDISPY_VERSION with hiredis $HIREDIS_VERSION on $("${PY_RUN[@]}" --version 2>&1)"
fi
note_skipped
"$BIN/bench_table" "$RESULTS"
