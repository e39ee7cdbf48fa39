#!/bin/sh
# The app: ?key=value stores a note, ?key reads it back.
echo "Content-Type: text/plain"
echo
case "$QUERY_STRING" in
  *=*) key=${QUERY_STRING%%=*}; value=$(httpd -d "${QUERY_STRING#*=}")
       answer=$(echo "PUT $key $value" | nc "$DB_HOST" "$DB_PORT")
       [ "$answer" = OK ] && echo "stored: $key" || echo "db: ${answer:-unreachable}" ;;
  ?*)  echo "GET $QUERY_STRING" | nc "$DB_HOST" "$DB_PORT" || echo "db: unreachable" ;;
  *)   echo "notes: ?key=value stores, ?key reads" ;;
esac
