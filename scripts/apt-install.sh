#!/usr/bin/env bash
# What every ensure-*.sh does once its check found something missing: install Debian
# packages as root, or, as another user, say which command to run and fail.
# usage: apt-install.sh WHAT PACKAGE... (--no-install-recommends may lead the packages)
set -euo pipefail
what="$1"; shift
packages=$(printf '%s ' "$@" | sed 's/--[a-z-]* //g')
if [ "$(id -u)" -ne 0 ]; then
  echo "$what is not installed: run 'sudo apt-get install ${packages% }'" >&2
  exit 1
fi
echo "installing $what (apt-get install ${packages% })..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "$@" >/dev/null
