#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine and runs it:
# a virtualenv with the package and its test extras, PostgreSQL server binaries for the store
# conformance suite (the tests start and stop their own private server), Podman with runc and a
# static busybox for the container tests (they use private storage and build their image from
# busybox; nothing is pulled), Debian's chromium for the web UI tests (driven by Playwright; never
# `playwright install`), Prometheus for the metrics test (it scrapes a real run), then ruff, mypy
# (configured in pyproject.toml) and pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch pinned here too (the test extra pulls it through podium[torch]): any other version
# would resolve to a multi-GB CUDA build.
.venv/bin/python -m pip install -q -e '.[test]' 'torch==2.13.0'

# apt_install WHAT PACKAGE...: install Debian packages (as root, with apt-get), else say what
# will be skipped.
apt_install() {
  local what="$1"
  shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* for $what (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "$* missing and cannot be installed: $what will be skipped" >&2
  fi
}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  apt_install "the PostgreSQL tests" postgresql
fi

# Podman, runc (crun cannot set rlimits without CAP_SYS_RESOURCE) and a static busybox.
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || [ ! -x /bin/busybox ]; then
  apt_install "the container tests" podman runc busybox-static
fi

if [ ! -x /usr/bin/chromium ]; then
  apt_install "the web UI and report tests" chromium
fi

# Prometheus: the metrics test starts a real one that scrapes a real run.
if ! command -v prometheus >/dev/null 2>&1; then
  apt_install "the metrics tests" prometheus
fi

.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
.venv/bin/mypy src/podium
exec .venv/bin/pytest "$@"
