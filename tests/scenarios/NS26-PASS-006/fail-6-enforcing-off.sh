#!/bin/sh
# expect: fail
# why: enforcing = 0 only warns
printf 'enforcing = 0\n' >> /etc/security/pwquality.conf
