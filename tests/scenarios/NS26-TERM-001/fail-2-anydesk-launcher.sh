#!/bin/sh
# expect: fail
mkdir -p "$ROOT/usr/share/applications"
printf '[Desktop Entry]\nExec=anydesk\n' > "$ROOT/usr/share/applications/anydesk.desktop"
