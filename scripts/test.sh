#!/usr/bin/env bash
# Set up everything the tests need (Debian packages, .venv with test extras), then run them all.
# Must run as root: the tests build an SSH lab of network namespaces on this machine.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
