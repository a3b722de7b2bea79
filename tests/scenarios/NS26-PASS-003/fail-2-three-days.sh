#!/bin/sh
# expect: fail
sed -i 's/^PASS_WARN_AGE.*/PASS_WARN_AGE 3/' /etc/login.defs
