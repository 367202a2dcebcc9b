#!/usr/bin/env bash
# A private redis-server on 127.0.0.1, its files in DIR; without persistence unless
# REDIS_APPENDFSYNC is set at the first start (always|everysec: AOF on, that fsync policy,
# kept for later starts in the same DIR). Also read at the first start and kept:
#   REDIS_SERVER_TLS_CERT, REDIS_SERVER_TLS_KEY, REDIS_SERVER_TLS_CA  PEM files: TLS only, on PORT
#     (the plain port is off); REDIS_SERVER_TLS_AUTH_CLIENTS no (default) | yes | optional
#   REDIS_ACL   ACL lines (e.g. "user default off" and "user fleet on >PASS ~tf* &* +@all"),
#     written to DIR/users.acl (mode 0600) and loaded with --aclfile
#   redis.sh start DIR [PORT]   prints redis://127.0.0.1:PORT (rediss:// with TLS) once it answers
#   redis.sh stop DIR           stops only the redis-server this script started in DIR
#   redis.sh kill DIR           SIGKILLs it, as a crash would (no shutdown flush)
#   redis.sh status DIR         prints the URL and exits 0 when running, exits 3 otherwise
# Starting again in the same DIR (after stop or kill) reuses its port and its AOF.
EXTRA_COMMANDS=kill
source "$(dirname "$(readlink -f "$0")")/lib.sh"
open_dir "$@"

url() { echo "redis$( [ -s "$DIR/redis.tls" ] && echo s)://127.0.0.1:$(cat "$DIR/redis.port")"; }
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

# TLS settings of the first start, one per line: cert, key, CA, auth-clients.
tls_settings() {
  if [ ! -e "$DIR/redis.tls" ]; then
    if [ -n "${REDIS_SERVER_TLS_CERT:-}" ]; then
      for f in "$REDIS_SERVER_TLS_CERT" "${REDIS_SERVER_TLS_KEY:?REDIS_SERVER_TLS_KEY must be set with REDIS_SERVER_TLS_CERT}" \
        "${REDIS_SERVER_TLS_CA:?REDIS_SERVER_TLS_CA must be set with REDIS_SERVER_TLS_CERT}"; do
        [ -r "$f" ] || die "TLS file '$f' cannot be read"
      done
      case "${REDIS_SERVER_TLS_AUTH_CLIENTS:-no}" in no | yes | optional) ;; *) die "REDIS_SERVER_TLS_AUTH_CLIENTS must be no, yes or optional" ;; esac
      printf '%s\n' "$(readlink -f "$REDIS_SERVER_TLS_CERT")" "$(readlink -f "$REDIS_SERVER_TLS_KEY")" \
        "$(readlink -f "$REDIS_SERVER_TLS_CA")" "${REDIS_SERVER_TLS_AUTH_CLIENTS:-no}" >"$DIR/redis.tls"
    else
      : >"$DIR/redis.tls"
    fi
  fi
  [ -s "$DIR/redis.tls" ] && mapfile -t TLS <"$DIR/redis.tls" || TLS=()
}

# The arguments that open PORT: plain, or TLS only (no plain port at all).
listen_args() {
  if [ ${#TLS[@]} -gt 0 ]; then
    echo "--port 0 --tls-port $1 --tls-cert-file ${TLS[0]} --tls-key-file ${TLS[1]} --tls-ca-cert-file ${TLS[2]} --tls-auth-clients ${TLS[3]}"
  else
    echo "--port $1"
  fi
}

acl_args() {
  if [ ! -e "$DIR/users.acl" ] && [ -n "${REDIS_ACL:-}" ]; then
    (umask 077; printf '%s\n' "$REDIS_ACL" >"$DIR/users.acl")
  fi
  [ -s "$DIR/users.acl" ] && echo "--aclfile $DIR/users.acl" || true
}

# Whether the server answers: PONG, or NOAUTH when an ACL wants a user (it answers all the same).
# Over TLS with the server's own certificate, which is also a client certificate of its CA.
answers() {
  local out
  if [ ${#TLS[@]} -gt 0 ]; then
    out=$(redis-cli --tls --cacert "${TLS[2]}" --cert "${TLS[0]}" --key "${TLS[1]}" -h 127.0.0.1 -p "$1" ping 2>/dev/null) || true
  else
    out=$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) || true
  fi
  [ "$out" = PONG ] || [[ "$out" == NOAUTH* ]]
}

case "$CMD" in
  start)
    if mine; then url; exit 0; fi
    ensure_packages redis-server:redis-server redis-cli:redis-tools
    [ -n "$PORT" ] || PORT=$( [ -s "$DIR/redis.port" ] && cat "$DIR/redis.port" || free_port)
    port_open "$PORT" && die "port $PORT is already taken: pass another PORT"
    echo "$PORT" >"$DIR/redis.port"
    PERSIST=$(persistence)
    tls_settings
    LISTEN=$(listen_args "$PORT")
    ACL=$(acl_args)
    # shellcheck disable=SC2086 # these hold separate arguments
    spawn redis "$DIR/redis.log" redis-server --bind 127.0.0.1 $LISTEN $ACL \
      --save '' $PERSIST --dir "$DIR" --protected-mode no --daemonize no
    for i in $(seq 1 200); do
      if answers "$PORT"; then url; exit 0; fi
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
    tls_settings
    if mine && answers "$(cat "$DIR/redis.port")"; then
      url
    else
      echo "not running"; exit 3
    fi
    ;;
  *) die "unknown command '$CMD': use start|stop|kill|status" ;;
esac
