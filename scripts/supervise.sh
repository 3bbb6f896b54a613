#!/usr/bin/env bash
# Keep one process running, the way `make up` keeps each service: when it dies it is started again
# (1 s, 2 s, 4 s ... 30 s apart; a run that lasted a minute resets the back-off), and stderr says so.
# SIGTERM or SIGINT stops the process and the supervisor.
# Usage: scripts/supervise.sh NAME LOGFILE COMMAND [ARGS...]
set -uo pipefail
name=$1 logfile=$2
shift 2
delay=1 child=0
stop() { [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null; exit 0; }
trap stop TERM INT
while true; do
  began=$(date +%s)
  "$@" >>"$logfile" 2>&1 &
  child=$!
  code=0; wait "$child" || code=$?
  (( $(date +%s) - began >= ${SUPERVISE_STEADY_SECONDS:-60} )) && delay=1
  echo "!! $name stopped (exit $code); restarting in ${delay}s — see $logfile" >&2
  sleep "$delay" & wait $!
  delay=$(( delay < 16 ? delay * 2 : 30 ))
done
