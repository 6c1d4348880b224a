#!/usr/bin/env bash
# Starts PostgreSQL, Redis and RabbitMQ when they are not answering on their conventional
# local ports, with this machine's own start commands, then waits until each one answers.
# Used by .ci/run; safe to run by hand at any time (it changes nothing that is already up).
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2 tries=${3:-120}
  for _ in $(seq "$tries"); do
    if port_open "$port"; then echo "ensure-services: $name is up on 127.0.0.1:$port"; return 0; fi
    sleep 1
  done
  echo "ensure-services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

if ! port_open 5432; then
  echo "ensure-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! port_open 6379; then
  echo "ensure-services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! port_open 5672; then
  echo "ensure-services: starting RabbitMQ"
  rabbitmq-server -detached || true
fi

wait_port PostgreSQL 5432
wait_port Redis 6379
wait_port RabbitMQ 5672 180
