#!/bin/sh
# expect: fail
# families: redhat
# why: sshd's stack (password-auth) lost the module; system-auth alone does not cover it
sed -i '/pam_pwquality/d' /etc/pam.d/password-auth
