#!/bin/sh
# expect: pass
chage -d 2025-01-01 alice
usermod -L alice
