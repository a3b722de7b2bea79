#!/bin/sh
# expect: pass
# why: module arguments win over pwquality.conf
sed -i 's/^minlen.*/minlen = 6/' /etc/security/pwquality.conf
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/pam_pwquality.so.*/& minlen=10 minclass=3/' "$f"
done
