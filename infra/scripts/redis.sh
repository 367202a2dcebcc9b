#!/usr/bin/env bash
# A private redis-server on 127.0.0.1, its files in DIR; without persistence unless
# REDIS_APPENDFSYNC is set at the first start (always|everysec: AOF on, that fsync policy,
# kept for later starts in the same DIR).
#   redis.sh start DIR [PORT]   prints redis://127.0.0.1:PORT once it answers PING
#   redis.sh stop DIR           stops only the redis-server this script started in DIR
#   redis.sh kill DIR           SIGKILLs it, as a crash would (no shutdown flush)
#   redis.sh status DIR         prints the URL and exits 0 when running, exits 3 otherwise
# Starting again in the same DIR (after stop or kill) reuses its port and its AOF.
EXTRA_COMMANDS=kill
source "$(dirname "$(readlink -f "$0")")/lib.sh"
open_dir "$@"

url() { echo "redis://127.0.0.1:$(cat "$DIR/redis.port")"; }
# redis-server rewrites its command line to "redis-server 127.0.0.1:PORT": match the port.
mine() { [ -s "$DIR/redis.port" ] && pid_alive redis "$(cat "$DIR/redis.port")"; }

persistence() {
  [ -s "$DIR/redis.appendfsync" ] || echo "${REDIS_APPENDFSYNC:-no}" >"$DIR/redis.appendfsync"
  case "$(cat "$DIR/redis.appendfsync")" in
    no) echo "--appendonly no" ;;
    always | everysec) echo "--appendonly yes --appendfsync $(cat "$DIR/redis.appendfsync") --appenddirname appendonly" ;;
    *) die "REDIS_APPENDFSYNC='$(cat "$DIR/redis.appendfsync")' must be always, everysec or unset" ;;
  esac
}

case "$CMD" in
  start)
    if mine; then url; exit 0; fi
    ensure_packages redis-server:redis-server redis-cli:redis-tools
    [ -n "$PORT" ] || PORT=$( [ -s "$DIR/redis.port" ] && cat "$DIR/redis.port" || free_port)
    port_open "$PORT" && die "port $PORT is already taken: pass another PORT"
    echo "$PORT" >"$DIR/redis.port"
    PERSIST=$(persistence)
    # shellcheck disable=SC2086 # PERSIST holds separate arguments
    spawn redis "$DIR/redis.log" redis-server --bind 127.0.0.1 --port "$PORT" \
      --save '' $PERSIST --dir "$DIR" --protected-mode no --daemonize no
    for i in $(seq 1 200); do
      if [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; then url; exit 0; fi
      mine || die "redis-server exited, see $DIR/redis.log"
      sleep 0.05
    done
    stop_pid redis "$PORT"
    die "redis-server did not answer PING within 10 s, see $DIR/redis.log"
    ;;
  stop) [ -s "$DIR/redis.port" ] && stop_pid redis "$(cat "$DIR/redis.port")"; rm -f "$DIR/redis.pid" ;;
  kill)
    if mine; then
      pid=$(cat "$DIR/redis.pid")
      kill -KILL "$pid"
      for i in $(seq 1 100); do running "$pid" || break; sleep 0.05; done
    fi
    rm -f "$DIR/redis.pid"
    ;;
  status)
    if mine && [ "$(redis-cli -p "$(cat "$DIR/redis.port")" ping 2>/dev/null)" = PONG ]; then
      url
    else
      echo "not running"; exit 3
    fi
    ;;
  *) die "unknown command '$CMD': use start|stop|kill|status" ;;
esac
