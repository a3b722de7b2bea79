#!/bin/sh
# expect: pass
# why: 0 first, 2 last: the last wins
sed -i 's/^PASS_MIN_DAYS.*/PASS_MIN_DAYS 0/' /etc/login.defs
printf 'PASS_MIN_DAYS\t2\n' >> /etc/login.defs
