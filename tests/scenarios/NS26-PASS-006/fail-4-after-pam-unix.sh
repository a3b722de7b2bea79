#!/bin/sh
# expect: fail
# why: checked only after pam_unix has set the password
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  { grep -v pam_pwquality "$f"; grep pam_pwquality "$f"; } > "$f.new" && mv "$f.new" "$f"
done
