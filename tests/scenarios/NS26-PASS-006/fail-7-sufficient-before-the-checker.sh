#!/bin/sh
# expect: fail
# why: a module before pam_pwquality can end the stack: its passwords are never checked
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i '0,/^password.*pam_pwquality/s//password sufficient pam_permit.so\n&/' "$f"
done
