#!/usr/bin/env bash
# Set up netfence in ./.venv: a virtual environment with netfence (editable) and its test tools.
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
"$python" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"netfence needs Python 3.11 or newer, found {sys.version.split()[0]}")
PY

# The dataplane and the lab drive the kernel through nft, conntrack and ip (Debian packages).
# Installed when missing and we are root; without them the kernel tests are skipped.
missing=()
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
command -v conntrack >/dev/null 2>&1 || [ -x /usr/sbin/conntrack ] || missing+=(conntrack)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)
# An external host's own firewall in the lab can also be iptables (ipset + iptables-restore).
command -v iptables-restore >/dev/null 2>&1 || [ -x /usr/sbin/iptables-restore ] || missing+=(iptables)
command -v ipset >/dev/null 2>&1 || [ -x /usr/sbin/ipset ] || missing+=(ipset)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# The HTML report's tests load the page in a headless Chromium: Debian's chromium-headless-shell
# (the browser without its desktop parts; about 90 MB, 20 s). Without it they are skipped.
if ! command -v chromium-headless-shell >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1 \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  browser=(apt-get install -y -q --no-install-recommends chromium-headless-shell)
  DEBIAN_FRONTEND=noninteractive "${browser[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${browser[@]}" >/dev/null; }
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2> >(grep -v "^WARNING: Location" >&2)
