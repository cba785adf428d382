#!/usr/bin/env bash
# Installs what a fresh machine lacks to build the Python example rail
# (examples/rail-python): python3 with venv. componentize-py itself comes from
# PyPI into target/python/ (xtask does that). Idempotent.
set -euo pipefail

if python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1; then
  echo "python: python3 with venv present"
  exit 0
fi
echo "python: installing Debian python3 and python3-venv"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq python3 python3-venv >/dev/null
