#!/bin/sh
# expect: fail
# why: absent: no minimum
sed -i 's/^PASS_MIN_DAYS/#PASS_MIN_DAYS/' /etc/login.defs
