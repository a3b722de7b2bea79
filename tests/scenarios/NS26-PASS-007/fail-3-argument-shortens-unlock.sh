#!/bin/sh
# expect: fail
# why: unlock_time=60 on the module lines beats the file
for f in /etc/pam.d/common-auth /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/pam_faillock.so \(preauth\|authfail\).*/& unlock_time=60/' "$f"
done
