#!/usr/bin/env python3
"""Writes a Compose file with N services that uses most of the syntax people
write: ports, volumes, environment, depends_on, healthchecks, limits,
networks, anchors, interpolation. Usage: gen_compose.py N > compose.yaml"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
out = []
w = out.append
w("x-common: &common")
w("  restart: unless-stopped")
w("  logging:")
w("    driver: json-file")
w("    options: {max-size: 10m, max-file: '3'}")
w("services:")
for i in range(n):
    w(f"  svc{i}:")
    w("    <<: *common")
    w(f"    image: registry.local/app{i % 17}:${{TAG:-1.{i % 5}}}")
    w(f"    command: [\"serve\", \"--port\", \"{8000 + i}\"]")
    w("    environment:")
    w(f"      - INDEX={i}")
    w("      - MODE=${MODE:-production}")
    w(f"      - PEER=svc{(i + 1) % n}")
    w("    ports:")
    w(f"      - \"127.0.0.1:{10000 + i}:{8000 + i}\"")
    w("    volumes:")
    w(f"      - data{i % 50}:/data")
    w("      - ./config:/etc/app:ro")
    if i > 0:
        w("    depends_on:")
        w(f"      svc{i - 1}:")
        w("        condition: service_started")
    w("    healthcheck:")
    w(f"      test: [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:{8000 + i}/\"]")
    w("      interval: 30s")
    w("      timeout: 5s")
    w("      retries: 3")
    w("    deploy:")
    w("      resources:")
    w("        limits: {cpus: '0.5', memory: 256M}")
    w("    pids_limit: 100")
    w("    networks: [front, back]")
w("networks:")
w("  front: {}")
w("  back: {internal: true}")
w("volumes:")
for v in range(min(n, 50)):
    w(f"  data{v}: {{}}")
print("\n".join(out))
