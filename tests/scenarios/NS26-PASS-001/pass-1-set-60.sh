#!/bin/sh
# expect: pass
# why: PASS_MAX_DAYS lowered to 60
sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS   60/' /etc/login.defs
