#!/bin/sh
# expect: fail
# why: commented out: passwords never expire
sed -i 's/^PASS_MAX_DAYS/# PASS_MAX_DAYS/' /etc/login.defs
