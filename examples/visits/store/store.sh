#!/bin/sh
# The shared store: one command per connection on stdin, the answer on
# stdout. "INCR key" adds one and prints the new value; "GET key" prints it.
read -r cmd key
key=${key:-hits}
mkdir -p /data
# nc forks one handler per connection: mkdir is the lock.
until mkdir /data/.lock 2>/dev/null; do :; done
n=$(cat "/data/$key" 2>/dev/null || echo 0)
if [ "$cmd" = INCR ]; then
  n=$((n + 1))
  echo "$n" > "/data/$key"
fi
rmdir /data/.lock
echo "$n"
