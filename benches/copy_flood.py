#!/usr/bin/env python3
"""A client that never ends its COPY: starts the recorded `copy t from
stdin` on a running pgsim serve and streams MiB of CopyData (64 KiB
messages, no CopyDone), then prints the server's resident memory
(BENCHMARKS.md, "Memory under hostile load").

    # record one COPY once (pgsim_copyfz with a table t (id int, name text)):
    pgsim record --upstream 127.0.0.1:5432 --listen 127.0.0.1:6598 --fixtures /tmp/copyfx &
    printf '1\tapple\n2\tpear\n' | psql -h 127.0.0.1 -p 6598 -U postgres pgsim_copyfz -c "copy t from stdin"
    kill -INT %1
    # then flood it:
    pgsim serve --fixtures /tmp/copyfx --listen 127.0.0.1:6597 [--max-message-size 8388608] &
    benches/copy_flood.py 6597 $! 512
"""
import socket
import struct
import sys
import time


def msg(kind, body):
    return kind + struct.pack("!i", len(body) + 4) + body


def startup():
    body = struct.pack("!i", 196608) + b"user\0postgres\0database\0pgsim_copyfz\0\0"
    return struct.pack("!i", len(body) + 4) + body


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


def main():
    port, pid, total_mib = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(startup())
    time.sleep(0.2)
    s.recv(65536)
    s.sendall(msg(b"Q", b"copy t from stdin\0"))
    time.sleep(0.2)
    print("answer to COPY:", s.recv(65536)[:1], "(G: CopyInResponse)")
    chunk = msg(b"d", b"1\tapple\n" * 8192)
    print("server RSS before:", rss_mib(pid), "MiB")
    sent = 0
    try:
        while sent < total_mib * 1024 * 1024:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError as e:
        print("the server stopped reading:", e)
    time.sleep(0.5)
    print("sent", sent // (1024 * 1024), "MiB of CopyData; server RSS", rss_mib(pid), "MiB")


if __name__ == "__main__":
    main()
