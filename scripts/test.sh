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
.venv/bin/python -m pip install -q -e '.[test]'

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL server binaries (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL binaries not found and cannot install them: PostgreSQL tests will be skipped" >&2
  fi
fi

# Podman, runc (crun cannot set rlimits without CAP_SYS_RESOURCE) and a static busybox.
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || [ ! -x /bin/busybox ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Podman, runc and busybox-static (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc busybox-static >/dev/null
  else
    echo "podman, runc or busybox-static missing and cannot install them: container tests will be skipped" >&2
  fi
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the web UI tests (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium not found and cannot install it: the web UI tests will be skipped" >&2
  fi
fi

# Prometheus: the metrics test starts a real one that scrapes a real run.
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Prometheus for the metrics tests (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
  else
    echo "prometheus not found and cannot install it: the metrics tests will be skipped" >&2
  fi
fi

.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
.venv/bin/mypy src/podium
exec .venv/bin/pytest "$@"
