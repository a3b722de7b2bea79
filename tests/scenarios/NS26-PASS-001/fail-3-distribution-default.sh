#!/bin/sh
# expect: fail
# why: the distributions' shipped 99999
sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS\t99999/' /etc/login.defs
