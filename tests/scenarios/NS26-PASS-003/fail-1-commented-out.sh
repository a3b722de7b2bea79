#!/bin/sh
# expect: fail
# why: absent: no warning at all (shadow 4.13), not 7
sed -i 's/^PASS_WARN_AGE/#PASS_WARN_AGE/' /etc/login.defs
