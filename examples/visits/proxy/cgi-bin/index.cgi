#!/bin/sh
# The reverse proxy: each request goes to the next backend in $BACKENDS.
set -- $BACKENDS
until mkdir /tmp/rr.lock 2>/dev/null; do :; done
i=$(cat /tmp/rr 2>/dev/null || echo 0)
echo $(( (i + 1) % $# )) > /tmp/rr
rmdir /tmp/rr.lock
shift "$i"
backend=$1
if body=$(wget -q -T 5 -O - "http://$backend/"); then
  echo "Content-Type: text/plain"
  echo
  echo "$body"
else
  echo "Status: 502 Bad Gateway"
  echo "Content-Type: text/plain"
  echo
  echo "proxy: $backend did not answer"
fi
