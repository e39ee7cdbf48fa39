#!/usr/bin/env python3
"""Writes a multi-stage Dockerfile of about N lines using every instruction
and both command forms. Usage: gen_dockerfile.py N > Dockerfile"""
import sys

target = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
lines = ["# syntax=docker/dockerfile:1", "ARG BASE=busybox:latest"]
stage = 0
while len(lines) < target:
    lines += [
        f"FROM ${{BASE}} AS stage{stage}",
        f"ARG VERSION=1.{stage}",
        f"ENV APP_HOME=/app{stage} PATH=/app{stage}/bin:$PATH",
        f"LABEL org.example.stage=\"{stage}\" version=$VERSION",
        "WORKDIR $APP_HOME",
        f"COPY --chown=1000:1000 --chmod=644 src/{stage}/ ./src/",
        "RUN --mount=type=cache,target=/var/cache/app \\",
        "    set -eux; \\",
        f"    echo building stage {stage}; \\",
        "    mkdir -p bin && touch bin/app",
        "RUN [\"/bin/sh\", \"-c\", \"echo exec form\"]",
        "EXPOSE 8080/tcp 9090/udp",
        "VOLUME [\"/data\"]",
        "USER 1000:1000",
        "HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1",
        "STOPSIGNAL SIGTERM",
        "ONBUILD RUN echo child build",
        "COPY <<EOF /etc/app.conf",
        f"stage={stage}",
        "EOF",
    ]
    if stage > 0:
        lines.append(f"COPY --from=stage{stage - 1} /app{stage - 1}/bin/app /usr/local/bin/app{stage - 1}")
    lines += ["ENTRYPOINT [\"/app/bin/app\"]", "CMD [\"--serve\"]", ""]
    stage += 1
print("\n".join(lines))
