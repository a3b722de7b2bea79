#!/bin/sh
# expect: fail
# why: positive credits let a 6-character password through minlen = 8
sed -i 's/^minlen.*/minlen = 8/' /etc/security/pwquality.conf
printf 'dcredit = 2\nocredit = 2\n' >> /etc/security/pwquality.conf
