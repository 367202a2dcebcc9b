# Shared helpers for redis.sh and swift.sh (sourced, not executed).
set -euo pipefail

log() { echo "[$(basename "$0" .sh)] $*" >&2; }
die() { log "error: $*"; exit 1; }

# A port is taken when something accepts a TCP connection on it.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A random free port below the kernel's ephemeral range (10000 up to it; 20000-59999 when the
# range cannot be read or starts too low), so that the local port of an outgoing connection
# cannot take it between this check and the server's bind. The TS wrappers pass the public
# port themselves.
free_port() {
  local p i lo=0 base=20000 span=40000
  [ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  if [ "$lo" -gt 12000 ]; then base=10000; span=$(( lo - 10000 )); fi
  for i in $(seq 1 200); do
    p=$(( base + (RANDOM * 32768 + RANDOM) % span ))
    if ! port_open "$p" && ! grep -qs "=$p\$" "${TAKEN_PORTS_FILE:-/dev/null}"; then
      echo "$p"; [ -n "${TAKEN_PORTS_FILE:-}" ] && echo "x=$p" >>"$TAKEN_PORTS_FILE"; return 0
    fi
  done
  die "no free port found"
}

# ensure_packages BINARY:PACKAGE... — apt-get installs the packages whose binary is missing.
# apt/dpkg are serialised with a lock file so that several scripts can start at once.
ensure_packages() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them yourself"
  log "installing ${missing[*]} with apt-get (once)"
  export DEBIAN_FRONTEND=noninteractive
  flock /tmp/tensorfleet-apt.lock sh -c '
    apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"' sh "${missing[@]}" \
    >>"$DIR/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed, see $DIR/apt.log"
}

# spawn NAME LOGFILE CMD... — runs CMD detached in its own session, records its PID in
# $DIR/NAME.pid. (A backgrounded child is never a process-group leader, so setsid execs in
# place and $! is the daemon's own PID.)
spawn() {
  local name=$1 logfile=$2; shift 2
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

# pid_alive NAME — the recorded process still runs and still is ours (its command line
# mentions $DIR or our port), so a recycled PID is never signalled.
pid_alive() {
  local f="$DIR/$1.pid" pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "${2:-$DIR}"
}

# running PID — exists and is not a zombie (a daemon whose starter exited is reaped late).
running() { [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop_pid NAME [MATCH] — TERM, then KILL after 5 s; only the PID recorded for NAME.
stop_pid() {
  local name=$1 f="$DIR/$1.pid" pid i
  if pid_alive "$name" "${2:-$DIR}"; then
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do running "$pid" || break; sleep 0.05; done
    if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    for i in $(seq 1 40); do running "$pid" || break; sleep 0.05; done
    running "$pid" && die "$name (pid $pid) did not stop"
  fi
  rm -f "$f"
}

# open_dir "$@" — checks `CMD DIR [PORT]` (CMD one of start stop status and the script's
# $EXTRA_COMMANDS) and sets CMD, PORT and DIR (absolute).
# Only start creates DIR; the other commands on a missing DIR have nothing to do.
open_dir() {
  local cmds="start stop status${EXTRA_COMMANDS:+ $EXTRA_COMMANDS}"
  [ $# -ge 2 ] || die "usage: $(basename "$0") ${cmds// /|} DIR [PORT]"
  case " $cmds " in *" $1 "*) ;; *) die "unknown command '$1': use ${cmds// /|}" ;; esac
  CMD=$1; PORT=${3:-}
  if [ "$CMD" = start ]; then mkdir -p "$2"
  elif [ ! -d "$2" ]; then [ "$CMD" = status ] && { echo "not running"; exit 3; }; exit 0; fi
  DIR=$(readlink -f "$2")
}
