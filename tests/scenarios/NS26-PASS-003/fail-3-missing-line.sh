#!/bin/sh
# expect: fail
sed -i '/^PASS_WARN_AGE/d' /etc/login.defs
