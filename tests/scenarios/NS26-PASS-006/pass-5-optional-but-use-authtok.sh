#!/bin/sh
# expect: pass
# why: optional, but pam_unix's use_authtok takes only the password the checker passed on
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/^\(password[[:space:]]*\)requisite\([[:space:]]*pam_pwquality\)/\1optional\2/' "$f"
done
