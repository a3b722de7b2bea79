#!/bin/sh
# expect: fail
chage -d 2025-01-01 alice
printf '[7] [01000] [ts/0] [alice   ] [pts/0       ] [10.0.0.5            ] [10.0.0.5       ] [2026-05-01T01:00:00,000000+00:00]\n' | utmpdump -r -o "$ROOT/var/log/wtmp" 2>/dev/null
