#!/usr/bin/env bash
# A private single-node OpenStack Swift with the S3 API (s3api + tempauth) on 127.0.0.1,
# everything in DIR: swift.conf, the four server confs, rings, one device, a private
# memcached, logs (DIR/*.log) and PIDs (DIR/*.pid). A start on a DIR that held one serves
# its objects again (fleet up keeps its S3 data this way).
#   swift.sh start DIR [PORT]   prints http://127.0.0.1:PORT once an S3 request succeeds
#   swift.sh stop DIR           stops only the processes this script started in DIR
#   swift.sh status DIR         prints the URL and exits 0 when running, exits 3 otherwise
#   swift.sh stop-proxy DIR     stops only the proxy (an S3 outage: connections are refused)
#   swift.sh start-proxy DIR    starts it again on the same port, once an S3 request succeeds
#   swift.sh stop-object DIR    stops only the object server: the proxy answers object requests with 503
#   swift.sh start-object DIR   starts it again
# SWIFT_LOG_LEVEL=INFO logs every request (default WARNING).
# SWIFT_TLS_CERT, SWIFT_TLS_KEY, SWIFT_TLS_CA (PEM files) at the first start: the proxy serves
# https with them (Swift's cert_file/key_file; kept for later starts), the URL is https://.
# S3 credentials: access key test:tester, secret testing, region us-east-1, path-style.
EXTRA_COMMANDS="stop-proxy start-proxy stop-object start-object"
source "$(dirname "$(readlink -f "$0")")/lib.sh"
open_dir "$@"
HERE=$(dirname "$(readlink -f "$0")")
PY=/usr/bin/python3   # Debian's python3-swift lives there, not in a pyenv/venv python
SERVERS=(account container object proxy)
ACCESS_KEY=test:tester SECRET_KEY=testing

# TLS settings of the first start, one per line: cert, key, CA; empty for plain http.
tls_settings() {
  if [ ! -e "$DIR/proxy.tls" ]; then
    if [ -n "${SWIFT_TLS_CERT:-}" ]; then
      for f in "$SWIFT_TLS_CERT" "${SWIFT_TLS_KEY:?SWIFT_TLS_KEY must be set with SWIFT_TLS_CERT}" "${SWIFT_TLS_CA:?SWIFT_TLS_CA must be set with SWIFT_TLS_CERT}"; do
        [ -r "$f" ] || die "TLS file '$f' cannot be read"
      done
      printf '%s\n' "$(readlink -f "$SWIFT_TLS_CERT")" "$(readlink -f "$SWIFT_TLS_KEY")" "$(readlink -f "$SWIFT_TLS_CA")" >"$DIR/proxy.tls"
    else
      : >"$DIR/proxy.tls"
    fi
  fi
  [ -s "$DIR/proxy.tls" ] && mapfile -t TLS <"$DIR/proxy.tls" || TLS=()
}
scheme() { [ ${#TLS[@]} -gt 0 ] && echo https || echo http; }

url() { echo "$(scheme)://127.0.0.1:$(cat "$DIR/proxy.port")"; }

# A signed (AWS v2) ListBuckets request: proves s3api, tempauth, memcached and the account
# server all work, not merely that the proxy port accepts connections.
s3_ping() {
  local port=$1 date sig
  date=$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')
  sig=$(printf 'GET\n\n\n%s\n/' "$date" | openssl dgst -sha1 -hmac "$SECRET_KEY" -binary | base64)
  # shellcheck disable=SC2046 # the CA option is two words or none
  curl -sf -o /dev/null --max-time 2 $( [ ${#TLS[@]} -gt 0 ] && echo "--cacert ${TLS[2]}") \
    -H "Date: $date" -H "Authorization: AWS $ACCESS_KEY:$sig" "$(scheme)://127.0.0.1:$port/"
}

stop_all() {
  local s
  for s in proxy object container account; do stop_pid "$s" "$DIR"; done
  # memcached's command line does not mention DIR: it is recognised by its port
  [ -s "$DIR/memcached.port" ] && stop_pid memcached "-p $(cat "$DIR/memcached.port")"
  rm -f "$DIR/memcached.pid"
}

write_configs() {
  local suffix prefix s
  # Objects are stored under a hash of their path salted with these: a restart on an existing
  # DIR keeps them (new ones would lose every object), a new DIR gets its own.
  suffix=$(sed -n 's/^swift_hash_path_suffix = //p' "$DIR/swift.conf" 2>/dev/null || true)
  prefix=$(sed -n 's/^swift_hash_path_prefix = //p' "$DIR/swift.conf" 2>/dev/null || true)
  [ -n "$suffix" ] || suffix=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  [ -n "$prefix" ] || prefix=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$DIR/data/d1"
  cat >"$DIR/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = $suffix
swift_hash_path_prefix = $prefix

[storage-policy:0]
name = Policy-0
default = yes
CONF
  for s in account container object; do
    cat >"$DIR/$s-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $(cat "$DIR/$s.port")
workers = 0
user = root
swift_dir = $DIR
devices = $DIR/data
mount_check = false
log_name = $s-server
log_level = ${SWIFT_LOG_LEVEL:-WARNING}

[pipeline:main]
pipeline = $s-server

[app:$s-server]
use = egg:swift#$s
$( [ "$s" = object ] && cat <<'OBJ'
# Listings must show an object once its PUT has answered: checkpoints are found by listing
# their folder. Swift waits 1 s for the container update and then answers anyway, and an
# update that fails goes to async_pending, which only an object-updater (not run here)
# replays. On a loaded host both happen; wait as long as the proxy does instead.
container_update_timeout = 30
conn_timeout = 5
node_timeout = 30
OBJ
)

[$s-replicator]
[$s-auditor]
[$s-updater]
CONF
  done
  cat >"$DIR/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $(cat "$DIR/proxy.port")
workers = 0
user = root
swift_dir = $DIR
log_name = proxy-server
log_level = ${SWIFT_LOG_LEVEL:-WARNING}
$( [ ${#TLS[@]} -gt 0 ] && printf 'cert_file = %s\nkey_file = %s\n' "${TLS[0]}" "${TLS[1]}")

[pipeline:main]
# s3api just before the auth filter; slo after it (multipart uploads are SLOs).
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# s3api's first request for a new user needs the account to exist
account_autocreate = true
allow_account_management = true
# One storage node: never take it out of service after errors (stop-object/start-object, a
# 5xx outage, must end when the server is back, not up to a minute later).
error_suppression_limit = 1000000

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
dns_compliant_bucket_names = true
allow_multipart_uploads = true
min_segment_size = 5242880
# storage_domain left unset: path-style requests only (what minio does for an IP endpoint)

[filter:tempauth]
use = egg:swift#tempauth
# S3 access key "test:tester", secret "testing"
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$(cat "$DIR/memcached.port")

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF
}

build_rings() {
  "$PY" "$HERE/swift-rings.py" "$DIR" "$(cat "$DIR/account.port")" "$(cat "$DIR/container.port")" \
    "$(cat "$DIR/object.port")" >>"$DIR/rings.log" 2>&1 || die "building the rings failed, see $DIR/rings.log"
}

start() {
  local s p i
  if pid_alive proxy "$DIR"; then url; exit 0; fi
  stop_all   # leftovers of a half-started instance
  ensure_packages swift-proxy-server:swift-proxy swift-account-server:swift-account \
    swift-container-server:swift-container swift-object-server:swift-object \
    swift-ring-builder:swift memcached:memcached curl:curl openssl:openssl
  [ -n "$PORT" ] || PORT=$(free_port)
  port_open "$PORT" && die "port $PORT is already taken: pass another PORT"
  TAKEN_PORTS_FILE="$DIR/.taken"; echo "x=$PORT" >"$TAKEN_PORTS_FILE"
  echo "$PORT" >"$DIR/proxy.port"
  for s in account container object memcached; do free_port >"$DIR/$s.port"; done
  rm -f "$TAKEN_PORTS_FILE"
  write_configs
  build_rings
  spawn memcached "$DIR/memcached.log" memcached -l 127.0.0.1 -p "$(cat "$DIR/memcached.port")" \
    -U 0 -m 64 -t 1 -u root
  for s in account container object proxy; do
    spawn "$s" "$DIR/$s.log" "$PY" "$HERE/swift-server.py" "$s-server" "$DIR/$s-server.conf"
  done
  for i in $(seq 1 300); do
    if s3_ping "$PORT"; then url; exit 0; fi
    for s in account container object proxy; do
      pid_alive "$s" "$DIR" || { stop_all; die "swift $s-server exited, see $DIR/$s.log"; }
    done
    sleep 0.1
  done
  stop_all
  die "Swift did not answer an S3 request within 30 s, see $DIR/*.log"
}

start_proxy() {
  local s i
  if pid_alive proxy "$DIR"; then url; exit 0; fi
  for s in account container object; do
    pid_alive "$s" "$DIR" || die "swift $s-server is not running in $DIR: use start"
  done
  port_open "$(cat "$DIR/proxy.port")" && die "port $(cat "$DIR/proxy.port") was taken while the proxy was down"
  spawn proxy "$DIR/proxy.log" "$PY" "$HERE/swift-server.py" proxy-server "$DIR/proxy-server.conf"
  for i in $(seq 1 300); do
    if s3_ping "$(cat "$DIR/proxy.port")"; then url; exit 0; fi
    pid_alive proxy "$DIR" || die "swift proxy-server exited, see $DIR/proxy.log"
    sleep 0.1
  done
  die "the Swift proxy did not answer an S3 request within 30 s, see $DIR/proxy.log"
}

start_object() {
  local i
  if pid_alive object "$DIR"; then exit 0; fi
  spawn object "$DIR/object.log" "$PY" "$HERE/swift-server.py" object-server "$DIR/object-server.conf"
  for i in $(seq 1 300); do
    port_open "$(cat "$DIR/object.port")" && exit 0
    pid_alive object "$DIR" || die "swift object-server exited, see $DIR/object.log"
    sleep 0.1
  done
  die "the Swift object server did not listen within 30 s, see $DIR/object.log"
}

tls_settings
case "$CMD" in
  start) start ;;
  stop) stop_all ;;
  stop-proxy) stop_pid proxy "$DIR" ;;
  start-proxy) start_proxy ;;
  stop-object) stop_pid object "$DIR" ;;
  start-object) start_object ;;
  status)
    if pid_alive proxy "$DIR" && s3_ping "$(cat "$DIR/proxy.port")"; then url; else echo "not running"; exit 3; fi
    ;;
  *) die "unknown command '$CMD': use start|stop|status|stop-proxy|start-proxy|stop-object|start-object" ;;
esac
