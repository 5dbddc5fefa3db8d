#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are up, starting them if needed.
# With CI=true a service that cannot be brought up is an error; locally the tests skip instead.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local port=$1
  for _ in $(seq 1 60); do up "$port" && return 0; sleep 0.5; done
  return 1
}

failed=0
if ! up 5432; then
  echo "services: starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  wait_for 5432 || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432"; failed=1; }
fi
if ! up 6379; then
  echo "services: starting Redis"
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  wait_for 6379 || { echo "services: Redis is not reachable on 127.0.0.1:6379"; failed=1; }
fi
if [ "$failed" = 1 ] && [ "${CI:-}" = "true" ]; then
  exit 1
fi
exit 0
