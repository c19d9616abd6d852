#!/usr/bin/env bash
# Runs a throwaway PostgreSQL cluster for tests from the installed PostgreSQL.
#
#   hack/postgres.sh start   initdb in a temporary directory, start on a free port, print a DSN
#   hack/postgres.sh stop    stop that cluster and remove its directory
#   hack/postgres.sh status  say whether it runs
#
# The cluster lives in ${KAFKASUB_POSTGRES_DIR:-${TMPDIR:-/tmp}/kafkasub-postgres}. As root
# (initdb refuses root) it runs as the postgres user. Trust auth on 127.0.0.1 only: a test
# database, never a real one.
set -euo pipefail

dir="${KAFKASUB_POSTGRES_DIR:-${TMPDIR:-/tmp}/kafkasub-postgres}"
data="$dir/data"
log() { echo "postgres: $*" >&2; }

bindir() {
  local d
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  log "PostgreSQL server binaries not found (apt-get install postgresql)"
  exit 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

dsn() { echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/kafkasub_test?sslmode=disable"; }

running() { [ -f "$dir/port" ] && as_owner "$(bindir)/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start() {
  if running; then
    log "already running"
    dsn
    return 0
  fi
  local bin port
  bin=$(bindir)
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  port=$(free_port)
  echo "$port" > "$dir/port"
  as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { log "initdb failed:"; cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres kafkasub_test
  log "running on 127.0.0.1:$port (data $data, log $dir/postgres.log)"
  dsn
}

stop() {
  if [ -d "$data" ]; then
    as_owner "$(bindir)/pg_ctl" -D "$data" -m fast -w stop >&2 || true
    rm -rf "$dir"
    log "stopped"
  else
    log "not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running: $(dsn)"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
