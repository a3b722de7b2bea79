#!/bin/sh
# expect: pass
# why: pam_cracklib with a digit, an upper- and a lower-case letter required
for f in /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i 's/pam_pwquality.so.*/pam_cracklib.so retry=3 minlen=10 dcredit=-1 ucredit=-1 lcredit=-1/' "$f"
done
