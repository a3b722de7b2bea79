#!/bin/sh
# expect: fail
# why: deny = 0 never locks
sed -i 's/^deny.*/deny = 0/' /etc/security/faillock.conf
