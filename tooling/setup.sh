#!/bin/bash
# Install everything the fork's build and tests need, from Debian packages
# and crates.io only.  Idempotent: when everything is there it returns at
# once.  Usage: tooling/setup.sh [--check]   (--check: report, install nothing)
set -euo pipefail

# bindgen-cli per base (the minima of each base's min-tool-version.sh):
# 6.12 builds with 0.70.1 in $TOOLS/bin, 7.3 with 0.72.1 in its own root.
BINDGEN_VERSION=0.70.1
BINDGEN73_VERSION=0.72.1
KFORK_HOME=${KFORK_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/kvm-fork}
TOOLS=$KFORK_HOME/tools
BINDGEN73_ROOT=$TOOLS/bindgen-$BINDGEN73_VERSION

PACKAGES=(
	# Rust: the one rustc here with matching core sources, and its cargo
	rustc-web rust-web-src cargo-web rustfmt-web rust-web-clippy
	# LLVM 16 for the 6.12 base (LLVM=-16), LLVM 19 for 7.3 (it needs 17 or
	# later); libclang for bindgen
	clang-16 lld-16 llvm-16 libclang-16-dev
	clang-19 lld-19 llvm-19 libclang-19-dev
	# kernel build
	make bc flex bison libelf-dev libssl-dev cpio kmod ccache perl python3
	xz-utils zstd rsync git dpkg-dev
	# static KVM selftests and guest helpers
	gcc libc6-dev
	# running the fork
	qemu-system-x86 busybox-static
	# series check: checkpatch's SPDX check (scripts/spdxcheck.py)
	python3-ply python3-git
	# the README's charts (make demo, make bench): tooling/plot.py
	python3-matplotlib
)

say() { echo "[setup] $*"; }
manual() {
	echo "[setup] $1" >&2
	echo "[setup] Install these by hand, then re-run:" >&2
	echo "[setup]   Debian packages: ${PACKAGES[*]}" >&2
	echo "[setup]   cargo install bindgen-cli --version $BINDGEN_VERSION --locked --root $TOOLS" >&2
	echo "[setup]   cargo install bindgen-cli --version $BINDGEN73_VERSION --locked --root $BINDGEN73_ROOT" >&2
	exit 1
}

missing=()
for p in "${PACKAGES[@]}"; do
	[[ $p == \#* ]] && continue
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done
have_bindgen=0
if [ -x "$TOOLS/bin/bindgen" ] &&
   [ "$("$TOOLS/bin/bindgen" --version 2>/dev/null)" = "bindgen $BINDGEN_VERSION" ]; then
	have_bindgen=1
fi
have_bindgen73=0
if [ -x "$BINDGEN73_ROOT/bin/bindgen" ] &&
   [ "$("$BINDGEN73_ROOT/bin/bindgen" --version 2>/dev/null)" = "bindgen $BINDGEN73_VERSION" ]; then
	have_bindgen73=1
fi
if [ ${#missing[@]} -eq 0 ] && [ $have_bindgen = 1 ] && [ $have_bindgen73 = 1 ]; then
	exit 0
fi
[ "${1:-}" = --check ] && { say "missing: ${missing[*]} $([ $have_bindgen = 1 ] || echo bindgen-cli $BINDGEN_VERSION) $([ $have_bindgen73 = 1 ] || echo bindgen-cli $BINDGEN73_VERSION)"; exit 1; }

. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
	manual "this is not Debian 12 (found: ${PRETTY_NAME:-unknown}); setup only automates Debian 12."
fi
if [ "$(id -u)" != 0 ]; then
	manual "setup needs root to install packages (missing: ${missing[*]:-none})."
fi

if [ ${#missing[@]} -gt 0 ]; then
	say "installing Debian packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi
if [ $have_bindgen = 0 ]; then
	say "building bindgen-cli $BINDGEN_VERSION from crates.io (about 1 minute)"
	/usr/bin/cargo install --quiet --locked bindgen-cli --version "$BINDGEN_VERSION" \
		--root "$TOOLS"
fi
if [ $have_bindgen73 = 0 ]; then
	say "building bindgen-cli $BINDGEN73_VERSION from crates.io (about 1 minute)"
	/usr/bin/cargo install --quiet --locked bindgen-cli --version "$BINDGEN73_VERSION" \
		--root "$BINDGEN73_ROOT"
fi
say "toolchain ready: $(/usr/bin/rustc --version), $(clang-16 --version | head -1)," \
	"$(clang-19 --version | head -1), $("$TOOLS/bin/bindgen" --version)," \
	"$("$BINDGEN73_ROOT/bin/bindgen" --version)"
