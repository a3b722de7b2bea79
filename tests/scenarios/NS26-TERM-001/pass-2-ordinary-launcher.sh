#!/bin/sh
# expect: pass
mkdir -p "$ROOT/usr/share/applications"
printf '[Desktop Entry]\nExec=/usr/bin/gedit %%U\n' > "$ROOT/usr/share/applications/gedit.desktop"
