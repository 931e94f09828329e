#!/usr/bin/env bash
# Set up everything trustwall, its tests and its lab need on a fresh Debian 12 host (as root).
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

apt_packages=(iptables nftables libnss3-tools p11-kit iproute2 curl wget git openssl
              ca-certificates ca-certificates-java openssh-server openssh-client procps psmisc
              util-linux make firewalld ufw dbus)
command -v java >/dev/null && command -v javac >/dev/null || apt_packages+=(openjdk-17-jdk-headless)
command -v node >/dev/null || apt_packages+=(nodejs)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to apt-get install: ${missing[*]}" >&2
    exit 3
  fi
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -q >/dev/null
  # firewalld and ufw are installed for the lab, which runs them inside namespaces: their
  # packages must never start them on this host. policy-rc.d answering 101 tells invoke-rc.d
  # not to start any service during the install (Debian's policy-rc.d(8) interface).
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# The project's venv (pinned deps from pyproject).
if [ ! -x .venv/bin/trustwall ] || [ pyproject.toml -nt .venv/.tw-stamp ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.tw-stamp
fi

# mitmproxy is the lab's intercepting edge box. It pins its own cryptography, so it lives in
# its own venv and never constrains trustwall's dependencies.
if [ ! -x .venv-mitm/bin/mitmdump ]; then
  echo "setup: creating .venv-mitm (mitmproxy for the lab)"
  "$PY" -m venv .venv-mitm
  .venv-mitm/bin/pip install -q 'mitmproxy==11.0.2'
fi

# ansible-core drives the fleet tests and bench (the trustwall.core collection in
# ansible_collections/). Its own venv: it never constrains trustwall's dependencies.
if [ ! -x .venv-ansible/bin/ansible-playbook ]; then
  echo "setup: creating .venv-ansible (ansible-core for the fleet tests)"
  "$PY" -m venv .venv-ansible
  .venv-ansible/bin/pip install -q 'ansible-core==2.17.14'
fi
