#!/bin/sh
# expect: fail
# why: a rejected password does not stop the change
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/^\(password[[:space:]]*\)requisite\([[:space:]]*pam_pwquality\)/\1optional\2/' "$f"
done
