#!/usr/bin/env bash
# Makes sure a Docker engine answers and every template image exists (images/templates/*/, on the
# foundation layer images/foundation/); safe to run again and again.
# Used by `npm run up`, by .ci/run and by humans. Expects `npm ci && npm run build` to have run.
#
#   bash scripts/provision.sh [--redis] [--gvisor] [--compose] [--hey] [--egress] [--browser]
#                             [--force-image]
#
#   --redis        also install redis-server (Debian package; not started: tests start their own)
#   --gvisor       also install runsc (Debian package) and register it with the engine as "runsc"
#   --compose      also install docker-compose (Debian package), to check deploy/docker-compose.yml
#   --hey          also install hey (Debian package), the seed's HTTP load tester (`npm run bench`)
#   --egress       also install iproute2, iptables and python3 (Debian packages): the worker's egress
#                  firewall, and the egress tests' network namespaces and the wheel they build
#   --browser      also install chromium and its fonts (Debian packages): the console's browser tests
#   --force-image  rebuild the template images even when they are up to date
#
# With no engine answering, on Debian as root it installs docker.io and starts dockerd in the
# background (pid in /var/run/sandpool-dockerd.pid, log in /var/log/sandpool-dockerd.log).
set -euo pipefail

readonly PIDFILE=/var/run/sandpool-dockerd.pid
readonly LOGFILE=/var/log/sandpool-dockerd.log
readonly READY_TIMEOUT_S=${SANDPOOL_DOCKERD_TIMEOUT_S:-60}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO_ROOT

say() { echo "provision: $*"; }
die() {
  echo "provision: error: $*" >&2
  exit 1
}

with_redis=0
with_gvisor=0
with_compose=0
with_hey=0
with_egress=0
with_browser=0
image_args=()
for arg in "$@"; do
  case $arg in
    --redis) with_redis=1 ;;
    --gvisor) with_gvisor=1 ;;
    --compose) with_compose=1 ;;
    --hey) with_hey=1 ;;
    --egress) with_egress=1 ;;
    --browser) with_browser=1 ;;
    --force-image) image_args+=(--force) ;;
    -h | --help)
      sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) die "unknown option $arg (see --help)" ;;
  esac
done

engine_answers() {
  command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

engine_version() {
  local version
  version=$(timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null) || version=''
  echo "${version:-unknown}"
}

is_debian_root() {
  [[ $(id -u) -eq 0 && -r /etc/debian_version ]] && command -v apt-get >/dev/null 2>&1
}

package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

apt_updated=0
# Installs the Debian packages that are missing; `apt-get update` only when something is.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    package_installed "$pkg" || missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0
  if ((apt_updated == 0)); then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
}

# Installs packages without letting their maintainer scripts start services (policy-rc.d 101),
# unless the machine already has a policy of its own.
apt_install_no_start() {
  local policy=/usr/sbin/policy-rc.d
  if [[ -e $policy ]]; then
    apt_install "$@"
    return
  fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  local status=0
  apt_install "$@" || status=$?
  rm -f "$policy"
  return "$status"
}

# True while the process runs; a zombie (killed, not yet reaped by a lax init) counts as gone.
process_alive() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# The pid in FILE if that process is alive and is COMMAND; a pid file from a killed run may name a
# pid the kernel has since given to something else.
live_pid() {
  local file=$1 command=$2 pid
  [[ -r $file ]] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [[ -n $pid ]] && process_alive "$pid" || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$command" ]] || return 1
  echo "$pid"
}

remove_if_stale() {
  local file=$1 command=$2
  if [[ -e $file ]] && ! live_pid "$file" "$command" >/dev/null; then
    say "removing stale $file"
    rm -f "$file"
  fi
}

fail_with_log() {
  echo "provision: error: $*" >&2
  if [[ -r $LOGFILE ]]; then
    echo "provision: last lines of $LOGFILE:" >&2
    tail -n 30 "$LOGFILE" >&2
  fi
  exit 1
}

# Waits until `docker info` answers; returns 1 when the dockerd with pid $1 exits first.
await_engine() {
  local pid=$1 deadline=$((SECONDS + READY_TIMEOUT_S))
  until engine_answers; do
    process_alive "$pid" || return 1
    if ((SECONDS >= deadline)); then
      fail_with_log "dockerd (pid $pid) did not answer within ${READY_TIMEOUT_S} s"
    fi
    sleep 0.5
  done
}

start_dockerd() {
  local pid file
  # A dockerd that is alive but not answering (another provision run, a slow start): wait for it
  # instead of starting a second one, which would fight it for the socket. One that was shutting
  # down exits instead; then start a new one.
  for file in "$PIDFILE" /var/run/docker.pid; do
    if pid=$(live_pid "$file" dockerd); then
      say "dockerd (pid $pid) is running but not answering; waiting for it"
      await_engine "$pid" && return
      say "dockerd (pid $pid) exited (it was shutting down); starting a new one"
    fi
  done
  remove_if_stale "$PIDFILE" dockerd
  remove_if_stale /var/run/docker.pid dockerd
  # dockerd's own containerd, and the system one; dockerd trusts a pid file it finds there.
  remove_if_stale /var/run/docker/containerd/containerd.pid containerd
  remove_if_stale /run/containerd/containerd.pid containerd

  say "starting dockerd (log: $LOGFILE)"
  mkdir -p "$(dirname "$LOGFILE")"
  # setsid: the engine outlives this script and is not killed with the caller's process group.
  setsid dockerd --pidfile "$PIDFILE" >>"$LOGFILE" 2>&1 </dev/null &
  pid=$!
  await_engine "$pid" || fail_with_log "dockerd (pid $pid) exited before the engine answered"
}

ensure_engine() {
  if engine_answers; then
    return
  fi
  if ! is_debian_root; then
    if [[ $(id -u) -ne 0 ]] && [[ -r /etc/debian_version ]]; then
      die "no Docker engine answers; run this script as root to install docker.io and start it, or install and start a Docker engine yourself (and make sure this user may use it)"
    fi
    die "no Docker engine answers; install Docker Engine (20.10 or newer) and start it, then run this again"
  fi
  apt_install docker.io
  # On a machine with systemd the package's own service may already be up.
  if engine_answers; then
    return
  fi
  start_dockerd
}

ensure_built_cli() {
  local cli=$REPO_ROOT/packages/server/dist/cli/main.js
  if [[ ! -f $cli ]]; then
    die "$cli is missing; run \`npm ci && npm run build\` in $REPO_ROOT first"
  fi
  command -v node >/dev/null 2>&1 || die "node is not on PATH; install Node.js 20.12 or newer"
}

# Sandboxes that no longer run (an engine restart stops them all, a killed test run leaves its own)
# serve nobody: remove them. Running ones belong to live workers and stay.
remove_stopped_sandboxes() {
  local ids
  ids=$(docker ps -aq --filter label=sandpool.managed=true --filter status=exited \
    --filter status=created --filter status=dead 2>/dev/null || true)
  if [[ -n $ids ]]; then
    say "removing $(wc -w <<<"$ids") stopped sandbox container(s)"
    # shellcheck disable=SC2086 # one id per word
    docker rm -f $ids >/dev/null 2>&1 || true
  fi
}

# gVisor's runsc, registered in daemon.json so `--runtime runsc` works. Sandboxes have no network,
# so runsc runs with --network=none (it refuses netns it cannot set up otherwise). A running
# dockerd reloads its runtimes on SIGHUP.
ensure_gvisor() {
  # gVisor is optional: where it cannot be set up, say so and go on (its tests then skip).
  if ! is_debian_root; then
    say "warning: gVisor not set up (installing runsc needs root on Debian); its tests will skip"
    return
  fi
  apt_install runsc
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
    say "gVisor runtime runsc registered"
    return
  fi
  mkdir -p /etc/docker
  python3 - /etc/docker/daemon.json <<'PY'
import json, os, sys
path = sys.argv[1]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) > 0 else {}
config.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
with open(path, "w") as f:
    json.dump(config, f, indent=2)
PY
  local pid
  if pid=$(live_pid "$PIDFILE" dockerd) || pid=$(live_pid /var/run/docker.pid dockerd); then
    kill -HUP "$pid"
  else
    say "warning: registered runsc in /etc/docker/daemon.json; restart the Docker engine to load it"
    return
  fi
  for _ in $(seq 1 20); do
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && break
    sleep 0.25
  done
  if ! docker info --format '{{json .Runtimes}}' | grep -q '"runsc"'; then
    say "warning: the engine did not load runsc; gVisor tests will skip"
    return
  fi
  say "gVisor runtime runsc registered"
}

main() {
  ensure_engine
  say "docker engine ready ($(engine_version))"
  remove_stopped_sandboxes

  if is_debian_root; then
    # debootstrap makes the local base when no registry can provide debian:bookworm-slim.
    apt_install debootstrap debian-archive-keyring
  fi
  if ((with_redis == 1)); then
    if command -v redis-server >/dev/null 2>&1; then
      say "redis-server present ($(redis-server --version | grep -o 'v=[0-9.]*' || true))"
    elif is_debian_root; then
      apt_install_no_start redis-server
      say "redis-server installed"
    else
      die "redis-server is missing; install it (Debian: apt-get install redis-server)"
    fi
  fi

  if ((with_gvisor == 1)); then
    ensure_gvisor
  fi
  if ((with_compose == 1)) && ! command -v docker-compose >/dev/null 2>&1; then
    if is_debian_root; then
      apt_install docker-compose
      say "docker-compose installed"
    else
      say "warning: docker-compose is missing (Debian: apt-get install docker-compose); its test will skip"
    fi
  fi

  if ((with_hey == 1)) && ! command -v hey >/dev/null 2>&1; then
    if is_debian_root; then
      apt_install hey
      say "hey installed"
    else
      say "warning: hey is missing (Debian: apt-get install hey); the bench skips the seed's load test"
    fi
  fi

  if ((with_egress == 1)); then
    if is_debian_root; then
      apt_install iproute2 iptables python3
      say "egress tools present (ip, iptables, python3)"
    elif ! command -v ip >/dev/null 2>&1 || ! command -v iptables >/dev/null 2>&1; then
      say "warning: ip or iptables is missing (Debian: apt-get install iproute2 iptables); the egress tests skip"
    fi
  fi

  if ((with_browser == 1)); then
    if is_debian_root; then
      # Recommends are off: the fonts come by name, so pages and screenshots have text.
      apt_install chromium fonts-liberation fonts-dejavu-core
      say "chromium present ($(chromium --version 2>/dev/null | head -1 || true))"
    elif ! command -v chromium >/dev/null 2>&1; then
      say "warning: chromium is missing (Debian: apt-get install chromium); the console's browser tests fail"
    fi
  fi

  ensure_built_cli
  # Every template in images/templates/ (base, code-interpreter, ...), each idempotent by its inputs.
  say "template images"
  (cd "$REPO_ROOT" && node packages/server/dist/cli/main.js template build --all "${image_args[@]}")
}

main
