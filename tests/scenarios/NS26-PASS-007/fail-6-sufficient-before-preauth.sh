#!/bin/sh
# expect: fail
# why: pam_unix asked before pam_faillock's preauth: a locked account with its password still gets in
for f in /etc/pam.d/common-auth /etc/pam.d/system-auth /etc/pam.d/password-auth; do [ -f "$f" ] || continue
  sed -i '0,/^auth.*pam_faillock.so preauth/s//auth sufficient pam_unix.so\n&/' "$f"
done
