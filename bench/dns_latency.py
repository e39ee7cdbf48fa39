#!/usr/bin/env python3
"""DNS query latency over UDP, one query at a time, for bench/dns.sh.

    dns_latency.py HOST:PORT NAME QTYPE COUNT      -> one JSON line of stats (µs)
    dns_latency.py --upstream HOST:PORT            -> a fake upstream resolver:
        answers every A query with 192.0.2.1 (TTL 300), everything else NXDOMAIN

Sequential queries measure the time to an answer, not throughput: each
query waits for its reply (matched by id) before the next is sent.
"""
import json
import random
import socket
import struct
import sys
import time

QTYPES = {"A": 1, "PTR": 12, "AAAA": 28}


def encode_query(qid, name, qtype):
    labels = b"".join(
        bytes([len(p)]) + p.encode() for p in name.strip(".").split(".") if p
    )
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(
        ">HH", QTYPES[qtype], 1
    )


def latency(server, name, qtype, count):
    host, port = server.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, int(port)))
    sock.settimeout(5)
    samples = []
    rcodes = {}
    answers = 0
    for _ in range(count):
        qid = random.randrange(65536)
        packet = encode_query(qid, name, qtype)
        start = time.perf_counter_ns()
        sock.send(packet)
        while True:
            reply = sock.recv(4096)
            if len(reply) >= 12 and struct.unpack(">H", reply[:2])[0] == qid:
                break
        samples.append(time.perf_counter_ns() - start)
        rcode = reply[3] & 0x0F
        rcodes[rcode] = rcodes.get(rcode, 0) + 1
        answers = struct.unpack(">H", reply[6:8])[0]
    samples.sort()

    def pct(p):
        return round(samples[min(len(samples) - 1, int(len(samples) * p))] / 1000, 1)

    print(
        json.dumps(
            {
                "name": name,
                "qtype": qtype,
                "count": count,
                "median_us": pct(0.5),
                "p90_us": pct(0.9),
                "p99_us": pct(0.99),
                "max_us": round(samples[-1] / 1000, 1),
                "mean_us": round(sum(samples) / len(samples) / 1000, 1),
                "rcodes": rcodes,
                "answers_in_last": answers,
            }
        )
    )


def upstream(listen):
    host, port = listen.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    while True:
        packet, peer = sock.recvfrom(4096)
        if len(packet) < 12:
            continue
        qid, flags = struct.unpack(">HH", packet[:4])
        end = 12
        while packet[end] != 0:
            end += packet[end] + 1
        question = packet[12 : end + 5]
        qtype = struct.unpack(">H", packet[end + 1 : end + 3])[0]
        rd = flags & 0x0100
        if qtype == 1:
            header = struct.pack(">HHHHHH", qid, 0x8080 | rd, 1, 1, 0, 0)
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])
        else:
            header = struct.pack(">HHHHHH", qid, 0x8083 | rd, 1, 0, 0, 0)
            answer = b""
        sock.sendto(header + question + answer, peer)


if __name__ == "__main__":
    if sys.argv[1] == "--upstream":
        upstream(sys.argv[2])
    else:
        latency(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
