#!/bin/sh
# A web server: counts the visit in the store and says who served it.
count=$(echo "INCR hits" | nc "$STORE_HOST" "$STORE_PORT")
echo "Content-Type: text/plain"
echo
echo "$(hostname): visit ${count:-?}"
