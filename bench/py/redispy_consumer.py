#!/usr/bin/env python3
"""Reference consumer written with redis-py (sync API, hiredis parser), the
way a skilled user would, to compare with xgroup's `throughput` examples and
the redis-rs loops (bench/src/bin/redisrs_consumer.rs). Same flags and same
last line (`consumed=M secs=S rate=R msgs/s`).

- `--mode idiomatic`: `XREADGROUP GROUP g c COUNT n BLOCK 1000 STREAMS s >`
  (`Redis.xreadgroup`), then one `XACK` of all its ids; repeat.
- `--mode pipelined`: the `XACK` of batch k goes in one pipeline
  (`transaction=False`) with the `XREADGROUP` of batch k+1 (one round trip
  per batch).

Like the redis-rs consumer it creates its group at 0 (`XGROUP CREATE s g 0
MKSTREAM`, an existing group being fine) and starts the clock after that.
`--in-flight` is accepted for flag compatibility and ignored. Refuses to run
without hiredis: the point is redis-py at its fastest.
"""

import argparse
import sys
import time

import redis
import redis.connection
import redis.utils

# `BLOCK` of every read, in milliseconds (as the throughput examples).
BLOCK_MS = 1000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="redis-py reference consumer (sync API, hiredis)")
    p.add_argument("--url", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--consumer", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--in-flight", type=int, default=2, help="ignored (flag compatibility)")
    p.add_argument("--mode", choices=["idiomatic", "pipelined"], default="idiomatic")
    return p.parse_args(argv)


def require_hiredis(r):
    """Exits with status 1 unless redis-py parses (and packs) with hiredis."""
    parser = r.connection_pool.connection_kwargs.get("parser_class", redis.connection.DefaultParser)
    if not redis.utils.HIREDIS_AVAILABLE or "Hiredis" not in parser.__name__:
        sys.exit(
            f"redispy_consumer: hiredis is not in use (redis {redis.__version__}, "
            f"HIREDIS_AVAILABLE={redis.utils.HIREDIS_AVAILABLE}, parser {parser.__name__}); "
            "pip install hiredis (bench/run.sh installs it in its venv)"
        )


def create_group(r, args):
    try:
        r.xgroup_create(args.stream, args.group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if not str(e).startswith("BUSYGROUP"):
            raise


def ids_of(reply):
    """The entry ids of an XREADGROUP reply: [[stream, [(id, fields), ...]]] or []."""
    return [entry[0] for _stream, entries in reply or () for entry in entries]


def idiomatic(r, args):
    """Read a batch, ack it, repeat."""
    streams = {args.stream: ">"}
    acked = 0
    while acked < args.messages:
        reply = r.xreadgroup(args.group, args.consumer, streams, count=args.count, block=BLOCK_MS)
        ids = ids_of(reply)
        if not ids:
            continue
        acked += r.xack(args.stream, args.group, *ids)
    return acked


def pipelined(r, args):
    """Ack batch k in the same round trip as the read of batch k+1."""
    streams = {args.stream: ">"}

    def read():
        return r.xreadgroup(args.group, args.consumer, streams, count=args.count, block=BLOCK_MS)

    pipe = r.pipeline(transaction=False)
    acked = 0
    pending = ids_of(read())
    delivered = len(pending)
    while delivered < args.messages:
        if not pending:
            pending = ids_of(read())
            delivered += len(pending)
            continue
        pipe.xack(args.stream, args.group, *pending)
        pipe.xreadgroup(args.group, args.consumer, streams, count=args.count, block=BLOCK_MS)
        n, reply = pipe.execute()
        acked += n
        pending = ids_of(reply)
        delivered += len(pending)
    if pending:
        acked += r.xack(args.stream, args.group, *pending)
    return acked


def main():
    args = parse_args()
    r = redis.Redis.from_url(args.url)
    require_hiredis(r)
    create_group(r, args)
    start = time.perf_counter()
    acked = idiomatic(r, args) if args.mode == "idiomatic" else pipelined(r, args)
    secs = time.perf_counter() - start
    print(f"consumed={acked} secs={secs:.3f} rate={acked / secs:.0f} msgs/s", flush=True)


if __name__ == "__main__":
    main()
