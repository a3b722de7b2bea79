#!/bin/sh
# expect: pass
# why: indented line
sed -i 's/^PASS_MIN_DAYS.*/   PASS_MIN_DAYS   1/' /etc/login.defs
