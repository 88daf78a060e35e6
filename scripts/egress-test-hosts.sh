#!/usr/bin/env bash
# The egress tests' outside world: one network namespace holding the test hosts' addresses, joined
# to the host by a veth pair. Addresses come from 198.18.14.0/24 (the benchmarking range, never
# routed on the internet) and exist only on this machine.
#   up    create the namespace and addresses (idempotent)
#   down  remove them (idempotent)
# Needs root and iproute2. The test starts the hosts' servers inside the namespace itself.
set -euo pipefail

NS=sp-egress-world
HOST_IF=spworld0
NS_IF=world0
HOST_ADDR=198.18.14.1/24
# .10 the package index, .11 an allowed host, .12 a denied host, .13 the allowed host's
# neighbour, .53 the DNS view.
NS_ADDRS=(198.18.14.10 198.18.14.11 198.18.14.12 198.18.14.13 198.18.14.53)

up() {
  if ! ip netns list | grep -qw "$NS"; then
    ip netns add "$NS"
  fi
  if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS"
  fi
  ip addr replace "$HOST_ADDR" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip netns exec "$NS" ip link set lo up
  for a in "${NS_ADDRS[@]}"; do
    ip netns exec "$NS" ip addr replace "$a/24" dev "$NS_IF"
  done
  ip netns exec "$NS" ip link set "$NS_IF" up
  echo "egress test hosts up: namespace $NS, ${NS_ADDRS[*]}"
}

down() {
  ip link del "$HOST_IF" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  echo "egress test hosts down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
