#!/bin/sh
# expect: pass
mkdir -p "$ROOT/root"
printf 'PATH=/usr/bin:/bin\nexport PATH\n' > "$ROOT/root/.profile"
