#!/usr/bin/env bash
# Side-by-side comparison of xgroup's adapters with redis-rs consumers.
#
#   bench/run.sh            throughput table (default)
#   bench/run.sh latency    produce->handler latency at a steady rate
#   bench/run.sh scale      1, 2 and 4 xgroup-tokio consumer processes in one group
#
# Builds everything in release, starts its own redis-server on a free
# loopback port (never the machine's 6379), and measures every client the
# same way (bench_measure: wall time, CPU time, peak RSS, server CPU time).
#
# Throughput: for each COUNT, ONE stream is filled once (xgroup-tokio's
# throughput example with --fill, which then drains it through a throwaway
# group "fill"); every measured run then drains that same backlog through a
# group of its own, created at 0. Clients run interleaved, BENCH_REPS times.
# The stream holds HEADROOM more entries than a run consumes: xgroup's
# consumers keep a read in flight, and had the backlog run dry that read would
# be an XREADGROUP BLOCK 1000 which a graceful stop waits out (~1 s that would
# be charged to the run); redis-rs's loops issue no read after the last ack.
#
# Environment:
#   BENCH_MESSAGES      messages at COUNT 1000 (default 1000000)
#   BENCH_MESSAGES_100  messages at COUNT 100 (default 30% of BENCH_MESSAGES)
#   BENCH_REPS          runs per client and COUNT, or latency runs (default 2)
#   BENCH_RATE, BENCH_SECS  latency mode's producer (default 10000 msgs/s, 10 s)
#   REDIS_SERVER        server binary (default /usr/bin/redis-server)
#   CARGO_TARGET_DIR    build directory (default target/); BENCH_JOBS: -j (2)
set -euo pipefail

MODE=${1:-throughput}
case "$MODE" in throughput | latency | scale) ;; *)
    echo "usage: $0 [throughput|latency|scale]" >&2
    exit 2
    ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
M=${BENCH_MESSAGES:-1000000}
M100=${BENCH_MESSAGES_100:-$((M * 3 / 10))}
REPS=${BENCH_REPS:-2}
RATE=${BENCH_RATE:-10000}
SECS=${BENCH_SECS:-10}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
JOBS=${BENCH_JOBS:-2}
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xgroup-bench.XXXXXX")
BIN=$WORK/bin
mkdir -p "$BIN"
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "== $*" >&2; }

# --- build (release) ---------------------------------------------------------
# The three adapters' examples share the output name `throughput`: build one
# package at a time and copy the binary right after its build.
for adapter in tokio async-std blocking; do
    log "building xgroup-$adapter's throughput example (release)"
    "$CARGO" build --release -j "$JOBS" -q -p "xgroup-$adapter" --example throughput
    cp "$TARGET/release/examples/throughput" "$BIN/throughput-$adapter"
done
log "building xgroup-bench (release)"
"$CARGO" build --release -j "$JOBS" -q -p xgroup-bench --bins
for b in redisrs_consumer xgroup_latency latency_producer bench_measure bench_table; do
    cp "$TARGET/release/$b" "$BIN/$b"
done

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
"$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/server.log" --daemonize no &
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

# --- throughput ----------------------------------------------------------------
HEADROOM=10000 # > in-flight batches x COUNT, see the top
RESULTS=$WORK/results.tsv
: >"$RESULTS"
CLIENTS=("xgroup-tokio" "xgroup-async-std" "xgroup-blocking" "redis-rs idiomatic" "redis-rs pipelined")
client_cmd() { # CLIENT -> the program and its mode flags
    case "$1" in
    xgroup-tokio) echo "$BIN/throughput-tokio" ;;
    xgroup-async-std) echo "$BIN/throughput-async-std" ;;
    xgroup-blocking) echo "$BIN/throughput-blocking" ;;
    "redis-rs idiomatic") echo "$BIN/redisrs_consumer --mode idiomatic" ;;
    "redis-rs pipelined") echo "$BIN/redisrs_consumer --mode pipelined" ;;
    esac
}

machine "before"
START=$(date +%s)
for count in 1000 100; do
    if [ "$count" = 1000 ]; then n=$M; else n=$M100; fi
    stream=bench-c$count
    log "COUNT $count: filling stream $stream with $n+$HEADROOM messages (xgroup-tokio --fill, drained once by group 'fill')"
    "$BIN/throughput-tokio" --url "$URL" --stream "$stream" --group fill --consumer f \
        --count 1000 --messages $((n + HEADROOM)) --fill >/dev/null
    for rep in $(seq "$REPS"); do
        for client in "${CLIENTS[@]}"; do
            log "COUNT $count run $rep: $client"
            # shellcheck disable=SC2046 # the command and its flags split on purpose
            "$BIN/bench_measure" "$client" "$count" "$SERVER_PID" -- $(client_cmd "$client") \
                --url "$URL" --stream "$stream" --group "g-${client// /-}-$rep" --consumer c \
                --count "$count" --messages "$n" >>"$RESULTS"
        done
    done
done
machine "after"
echo "throughput: $REPS runs per client, interleaved; each drains the same pre-filled backlog (+$HEADROOM spare entries) through its own group"
echo "COUNT 1000: $M messages, COUNT 100: $M100 messages; values are medians; took $(($(date +%s) - START)) s"
echo "server% = server CPU-s / client wall-s; cpu-s/M = client CPU-s per million messages; RSS = peak VmHWM"
"$BIN/bench_table" "$RESULTS"
