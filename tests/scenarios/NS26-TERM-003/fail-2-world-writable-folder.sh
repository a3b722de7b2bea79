#!/bin/sh
# expect: fail
mkdir -p "$ROOT/opt/tools"
chmod 777 "$ROOT/opt/tools"
printf 'PATH="/usr/bin:/bin:/opt/tools"\n' > /etc/environment
