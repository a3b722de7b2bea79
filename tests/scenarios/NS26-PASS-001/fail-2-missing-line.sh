#!/bin/sh
# expect: fail
# why: the line removed: passwords never expire
sed -i '/^PASS_MAX_DAYS/d' /etc/login.defs
