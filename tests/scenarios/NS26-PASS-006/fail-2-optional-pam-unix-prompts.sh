#!/bin/sh
# expect: fail
# why: optional, and pam_unix asks for the password itself: a rejected one goes through
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/^\(password[[:space:]]*\)requisite\([[:space:]]*pam_pwquality\)/\1optional\2/; s/ use_authtok//' "$f"
done
