#!/bin/sh
# expect: fail
# families: debian
printf '\nPackage: rustdesk\nStatus: install ok installed\nVersion: 1.2.3\n' >> "$ROOT/var/lib/dpkg/status"
