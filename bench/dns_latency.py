#!/usr/bin/env python3
"""DNS query latency over UDP, one query at a time, for bench/dns.sh.

    dns_latency.py suite ROUNDS COUNT LABEL=HOST:PORT,NAME,QTYPE ...
        -> one JSON object: per label, the median of each round's median,
           the best round's median, the p99 and max over all rounds (µs),
           and the response codes seen
    dns_latency.py upstream HOST:PORT
        -> a fake upstream resolver: answers every A query with 192.0.2.1
           (TTL 300), everything else NXDOMAIN

Sequential queries measure the time to an answer, not throughput: each
query waits for its reply (matched by id) before the next is sent. The
measurements are interleaved round by round, so a burst of load from
elsewhere on a shared machine hits all of them alike rather than one.
"""
import json
import random
import socket
import statistics
import struct
import sys
import time

QTYPES = {"A": 1, "PTR": 12, "AAAA": 28}


def encode_query(qid, name, qtype):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".") if p)
    return (
        struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack(">HH", QTYPES[qtype], 1)
    )


def run(sock, name, qtype, count, rcodes):
    samples = []
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
    return samples


def suite(rounds, count, specs):
    cases = []
    for spec in specs:
        label, rest = spec.split("=", 1)
        server, name, qtype = rest.split(",")
        host, port = server.rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((host, int(port)))
        sock.settimeout(5)
        run(sock, name, qtype, 50, {})  # warm-up
        cases.append({"label": label, "sock": sock, "name": name, "qtype": qtype,
                      "medians": [], "all": [], "rcodes": {}})
    for _ in range(rounds):
        for case in cases:
            samples = run(case["sock"], case["name"], case["qtype"], count, case["rcodes"])
            case["medians"].append(statistics.median(samples))
            case["all"].extend(samples)
    out = {}
    for case in cases:
        everything = sorted(case["all"])
        out[case["label"]] = {
            "median_us": round(statistics.median(case["medians"]) / 1000, 1),
            "best_us": round(min(case["medians"]) / 1000, 1),
            "p99_us": round(everything[int(len(everything) * 0.99)] / 1000, 1),
            "max_us": round(everything[-1] / 1000, 1),
            "rcodes": {str(k): v for k, v in sorted(case["rcodes"].items())},
        }
    print(json.dumps(out))


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
    if sys.argv[1] == "upstream":
        upstream(sys.argv[2])
    elif sys.argv[1] == "suite":
        suite(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit(__doc__)
