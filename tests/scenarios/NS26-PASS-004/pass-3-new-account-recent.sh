#!/bin/sh
# expect: pass
useradd -M -s /bin/bash bob
usermod -p '$6$salt$abcdefghijklmnop' bob
chage -d 2026-10-15 bob
