#!/usr/bin/env bash
# Make sure the real-browser tests have a Chromium, the first way that works:
# 1. Debian's /usr/bin/chromium is already there;
# 2. install Debian's chromium with apt-get (as root, or through passwordless sudo);
# 3. Playwright's own Chromium (`playwright install chromium`, needs the internet).
# Only when all fail: one line saying what to install, and a non-zero exit.
set -u
PY=${1:-.venv/bin/python}
[ -x /usr/bin/chromium ] && exit 0

apt_install() {
    DEBIAN_FRONTEND=noninteractive "$@" apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive "$@" apt-get install -y -qq chromium >/dev/null 2>&1
}
if command -v apt-get >/dev/null 2>&1; then
    echo "browser tests: installing Debian's chromium with apt-get…" >&2
    if [ "$(id -u)" = 0 ]; then
        apt_install env && [ -x /usr/bin/chromium ] && exit 0
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        apt_install sudo -n env && [ -x /usr/bin/chromium ] && exit 0
    fi
fi
echo "browser tests: trying Playwright's own Chromium…" >&2
"$PY" -m playwright install chromium >/dev/null 2>&1 && exit 0
echo "error: no Chromium for the browser tests; install Debian's chromium" \
    "(sudo apt-get install chromium) or run '$PY -m playwright install chromium' online" >&2
exit 1
