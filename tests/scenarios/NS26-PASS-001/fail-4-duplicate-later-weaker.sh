#!/bin/sh
# expect: fail
# why: a later, weaker duplicate wins
printf 'PASS_MAX_DAYS 180\n' >> /etc/login.defs
