#!/bin/sh
# expect: fail
# families: debian
# why: without the MACs line OpenSSH's defaults offer hmac-sha1 and umac-64
sed -i '/^MACs/d' /etc/ssh/sshd_config
