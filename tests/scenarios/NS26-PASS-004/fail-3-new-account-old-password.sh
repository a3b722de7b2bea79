#!/bin/sh
# expect: fail
useradd -M -s /bin/bash bob
usermod -p '$6$salt$abcdefghijklmnop' bob
chage -d 2025-12-31 bob
