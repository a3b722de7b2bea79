#!/usr/bin/env bash
# Set up, then audit this machine against the policies and print the table by article.
# Extra arguments go to `nanbu-secops check` (e.g. --lang en, --format json, --root /mnt/image).
# Run as root: /etc/shadow is readable only by root. Exit 0 all clear, 1 findings, 2 bad input.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/nanbu-secops check "$@"
