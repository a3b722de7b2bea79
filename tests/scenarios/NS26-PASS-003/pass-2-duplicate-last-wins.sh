#!/bin/sh
# expect: pass
sed -i 's/^PASS_WARN_AGE.*/PASS_WARN_AGE 3/' /etc/login.defs
printf 'PASS_WARN_AGE 10\n' >> /etc/login.defs
