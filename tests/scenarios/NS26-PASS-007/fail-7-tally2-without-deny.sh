#!/bin/sh
# expect: fail
# why: pam_tally2 without deny= never locks
for f in /etc/pam.d/common-auth /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i '/pam_faillock/d' "$f"
  sed -i '1i auth required pam_tally2.so onerr=fail' "$f"
done
