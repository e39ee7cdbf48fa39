#!/bin/sh
# The reverse proxy: each request goes to the next backend in $BACKENDS.
set -- $BACKENDS
until mkdir /tmp/rr.lock 2>/dev/null; do :; done
i=$(cat /tmp/rr 2>/dev/null || echo 0)
echo $(( (i + 1) % $# )) > /tmp/rr
rmdir /tmp/rr.lock
shift "$i"
backend=$1
# (busybox 1.35's wget -T crashes: timeout(1) bounds it instead.)
if body=$(timeout 5 wget -q -O - "http://$backend/"); then
  echo "Content-Type: text/plain"
  echo
  echo "$body"
else
  echo "Status: 502 Bad Gateway"
  echo "Content-Type: text/plain"
  echo
  echo "proxy: $backend did not answer"
fi
