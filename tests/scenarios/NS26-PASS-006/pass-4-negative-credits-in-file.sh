#!/bin/sh
# expect: pass
# why: three classes demanded through credits instead of minclass
sed -i '/^minclass/d' /etc/security/pwquality.conf
printf 'dcredit = -1\nucredit = -1\nocredit = -1\n' >> /etc/security/pwquality.conf
