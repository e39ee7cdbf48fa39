#!/bin/sh
# The database: "PUT key value" stores, "GET key" prints. Keys are plain
# words; each is a file in the data volume.
read -r cmd key value
case "$key" in
  ''|*[!A-Za-z0-9_-]*) echo "ERR bad key"; exit 0 ;;
esac
case "$cmd" in
  PUT) printf '%s\n' "$value" > "/var/lib/db/$key.tmp" && mv "/var/lib/db/$key.tmp" "/var/lib/db/$key" && echo "OK" ;;
  GET) cat "/var/lib/db/$key" 2>/dev/null || echo "ERR no such key" ;;
  *) echo "ERR unknown command" ;;
esac
