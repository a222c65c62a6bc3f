#!/usr/bin/env bash
# Installs and starts what deployments and the Docker test tier need, on Debian as root:
#   - the Docker engine (package docker.io), on its default socket;
#   - a registry (package docker-registry) on 127.0.0.1:5000, storing under .kyb-deploy/registry.
# Idempotent: whatever already runs is left alone. Where it cannot install (not root, not
# Debian), it says what to start by hand and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

state="$PWD/.kyb-deploy/services"
registry_addr="127.0.0.1:5000"
mkdir -p "$state"

say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

engine_up() { docker info >/dev/null 2>&1; }
registry_up() { curl -fsS -o /dev/null "http://$registry_addr/v2/" 2>/dev/null; }

wait_for() { # what, check, seconds, log
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    if "$2"; then return 0; fi
    sleep 0.2
  done
  fail "$1 did not come up within $3 s; see $4"
}

# 1. Packages.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # On a systemd machine the package starts its own registry on :5000 with htpasswd auth;
    # this project runs its own on 127.0.0.1:5000 instead.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
      say "stopping the packaged docker-registry service (it would hold port 5000)"
      systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
  else
    fail "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]}), or start a Docker engine and a registry on $registry_addr yourself"
  fi
fi

# 2. The engine.
if engine_up; then
  say "docker engine: already running"
else
  [ "$(id -u)" = 0 ] || fail "the Docker engine is not running and only root can start it here; start dockerd (or the docker service)"
  # A dockerd that was killed leaves its pid file; a new one refuses to start if that pid now
  # belongs to another process.
  pidfile=/var/run/docker.pid
  if [ -f "$pidfile" ] && [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" != dockerd ]; then
    rm -f "$pidfile"
  fi
  say "starting dockerd (log: $state/dockerd.log)"
  # Its own session: the engine outlives the shell (or CI step) that started it.
  setsid nohup dockerd >"$state/dockerd.log" 2>&1 &
  wait_for "dockerd" engine_up 60 "$state/dockerd.log"
fi

# 3. The registry.
if registry_up; then
  say "registry on $registry_addr: already running"
else
  mkdir -p "$PWD/.kyb-deploy/registry"
  cat >"$state/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PWD/.kyb-deploy/registry
  delete:
    enabled: true
http:
  addr: $registry_addr
YAML
  say "starting the registry on $registry_addr (log: $state/registry.log)"
  setsid nohup docker-registry serve "$state/registry.yml" >"$state/registry.log" 2>&1 &
  wait_for "the registry" registry_up 30 "$state/registry.log"
fi
say "ready: docker engine and registry $registry_addr"
