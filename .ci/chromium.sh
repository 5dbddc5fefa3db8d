#!/usr/bin/env bash
# The web dashboard's browser test drives the system Chromium through Playwright (never a downloaded browser).
# Best effort: install Debian's chromium when it is missing and we may; under CI=true the test fails without it.
set -u
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium: installing chromium for the dashboard's browser test"
  (apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) ||
    echo "chromium: could not install chromium; the browser test cannot run here"
else
  echo "chromium: /usr/bin/chromium not found; install Debian's chromium package for the browser test"
fi
exit 0
