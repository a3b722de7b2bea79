#!/bin/sh
# expect: fail
# why: minlen=6 on the module line beats minlen = 12 in the file
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/pam_pwquality.so.*/& minlen=6/' "$f"
done
