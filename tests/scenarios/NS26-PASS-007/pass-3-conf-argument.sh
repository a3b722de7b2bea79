#!/bin/sh
# expect: pass
# why: a weak faillock.conf, but the rules read their own conf= file
printf 'deny = 10\n' > /etc/security/faillock.conf
printf 'deny = 4\nunlock_time = 1200\n' > /etc/security/faillock-county.conf
for f in /etc/pam.d/common-auth /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/pam_faillock.so \(preauth\|authfail\).*/& conf=\/etc\/security\/faillock-county.conf/' "$f"
done
