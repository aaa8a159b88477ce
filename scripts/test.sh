#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine and runs it:
# a virtualenv with the package and its test extras, PostgreSQL server binaries for the store
# conformance suite (the tests start and stop their own private server), then ruff and pytest.
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

.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
exec .venv/bin/pytest "$@"
