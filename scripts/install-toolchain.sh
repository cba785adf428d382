#!/usr/bin/env bash
# Installs what a fresh machine lacks to build the WebAssembly plugins.
#
# Plugins are built for wasm32-unknown-unknown. Where rustup already has that
# target we use it; otherwise we use Debian's rustc-web (with its std source, so
# std is rebuilt for wasm with -Zbuild-std) and rust-lld. Idempotent: does
# nothing when a route is already present. See docs/plugins-build.md.
set -euo pipefail

have_rustup_target() {
  command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}

have_debian_route() {
  [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && [ -x /usr/bin/rust-lld ] &&
    [ -d /usr/lib/rustlib/src/rust/library ]
}

if have_rustup_target; then
  echo "toolchain: rustup has wasm32-unknown-unknown"
  exit 0
fi
if have_debian_route; then
  echo "toolchain: Debian rustc-web route present"
  exit 0
fi

echo "toolchain: installing Debian rustc-web, cargo-web, rust-web-src, lld-22"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 >/dev/null

# lld-22 ships rust-lld under its own prefix on some releases; make the name we use exist.
if [ ! -x /usr/bin/rust-lld ]; then
  for candidate in /usr/lib/llvm-22/bin/rust-lld /usr/lib/llvm-22/bin/lld /usr/bin/lld-22; do
    if [ -x "$candidate" ]; then $SUDO ln -sf "$candidate" /usr/bin/rust-lld; break; fi
  done
fi
have_debian_route || { echo "toolchain: install finished but the Debian route is incomplete" >&2; exit 1; }
echo "toolchain: ready"
