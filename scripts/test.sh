#!/usr/bin/env bash
# Set up everything the tests need (Debian packages, .venv with test extras), then run them all.
# Must run as root: the tests build an SSH lab of network namespaces on this machine.
# Extra arguments go to pytest, and then only that pytest run is made.
# Without arguments, ruff first checks the Python (rules in pyproject.toml) and ansible-lint the
# playbooks (production profile, see .ansible-lint), and after pytest the tests that need no lab are run again under shifted wall clocks (Debian's
# faketime), so that no test depends on the day it runs:
#   +400 days                 a year and more ahead
#   2026-12-31 16:30:00 UTC   already 2027-01-01 in the county (UTC+8), still 2026 in UTC
#   2027-03-31 16:10:00 UTC   already Q2 in the county, still Q1 in UTC
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
if (($#)); then
  exec .venv/bin/python -m pytest "$@"
fi
# The code as the field's own linters judge it: ruff (pyproject.toml's [tool.ruff]) and ansible-lint
# (settings and reasons in .ansible-lint).
echo "== ruff check"
.venv/bin/ruff check .
echo "== ansible-lint --profile production"
PATH="$PWD/.venv/bin:$PATH" .venv/bin/ansible-lint --profile production --offline playbooks/
.venv/bin/python -m pytest
# The monotonic clock stays real: tests/faketime/sitecustomize.py says why.
for when in "+400 days" "2026-12-31 16:30:00 UTC" "2027-03-31 16:10:00 UTC"; do
  echo "== the tests that need no lab, with the wall clock at: $when"
  FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONPATH="$PWD/tests/faketime" \
    faketime "$when" .venv/bin/python -m pytest -q -m "not lab" -p no:cacheprovider
done
