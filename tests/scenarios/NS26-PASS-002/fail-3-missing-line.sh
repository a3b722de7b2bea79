#!/bin/sh
# expect: fail
sed -i '/^PASS_MIN_DAYS/d' /etc/login.defs
