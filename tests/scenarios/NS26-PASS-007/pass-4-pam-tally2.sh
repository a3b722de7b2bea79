#!/bin/sh
# expect: pass
# why: an older system's pam_tally2 with its thresholds
for f in /etc/pam.d/common-auth /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i '/pam_faillock/d' "$f"
  sed -i '1i auth required pam_tally2.so onerr=fail deny=5 unlock_time=900' "$f"
done
