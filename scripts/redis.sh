#!/usr/bin/env bash
# A throwaway Redis server (Debian's redis-server) under .local/redis for the gateway's rate limits.
# Usage: scripts/redis.sh start|stop (STATE_DIR, default .local, holds its files)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
REDIS_PORT="${REDIS_PORT:-26379}"
dir="${STATE_DIR:-$root/.local}/redis"
case "${1:-start}" in
  start)
    if ! command -v redis-server >/dev/null 2>&1; then
      echo "redis-server not found; installing the Debian package" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq redis-server >&2
    fi
    mkdir -p "$dir"
    if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
      if [ "$(cat "$dir/port" 2>/dev/null)" = "$REDIS_PORT" ]; then
        echo "redis already running on 127.0.0.1:$REDIS_PORT"; exit 0
      fi
      echo "redis is running on another port; restarting it on $REDIS_PORT"
      kill "$(cat "$dir/redis.pid")"; sleep 0.5
    fi
    echo "$REDIS_PORT" > "$dir/port"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 1 50); do
      redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && { echo "redis started on 127.0.0.1:$REDIS_PORT"; exit 0; }
      sleep 0.1
    done
    echo "redis did not start; see $dir/redis.log" >&2; exit 1
    ;;
  stop)
    if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; rm -f "$dir/redis.pid"; fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
