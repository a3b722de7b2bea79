#!/bin/sh
# expect: pass
sed -i 's/^PASS_WARN_AGE.*/# PASS_WARN_AGE 0\nPASS_WARN_AGE 7/' /etc/login.defs
