#!/bin/sh
# expect: pass
# why: a later, stricter duplicate: the last occurrence wins
printf 'PASS_MAX_DAYS 30\n' >> /etc/login.defs
