#!/bin/sh
# expect: pass
# why: the thresholds only in pwquality.conf.d
sed -i '/^minlen/d; /^minclass/d' /etc/security/pwquality.conf
mkdir -p /etc/security/pwquality.conf.d
printf 'minlen = 12\nminclass = 3\n' > /etc/security/pwquality.conf.d/50-county.conf
