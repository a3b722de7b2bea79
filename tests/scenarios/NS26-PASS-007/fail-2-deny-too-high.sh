#!/bin/sh
# expect: fail
sed -i 's/^deny.*/deny = 10/' /etc/security/faillock.conf
