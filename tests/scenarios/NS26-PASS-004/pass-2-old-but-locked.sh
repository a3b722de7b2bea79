#!/bin/sh
# expect: pass
# why: an old password on a locked account is not usable
chage -d 2025-01-01 alice
usermod -L alice
