#!/bin/sh
# expect: fail
# why: an autostart entry whose program is a VNC server
mkdir -p /etc/xdg/autostart
printf '[Desktop Entry]\nExec=env DISPLAY=:0 /usr/bin/x11vnc -forever\n' > /etc/xdg/autostart/remote.desktop
