#!/bin/sh
# expect: pass
printf 'KexAlgorithms -diffie-hellman-group14-sha256\nCiphers -*-cbc\n' > /etc/ssh/sshd_config.d/10-local.conf
