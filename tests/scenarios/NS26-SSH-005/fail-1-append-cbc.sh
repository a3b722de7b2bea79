#!/bin/sh
# expect: fail
printf 'Ciphers +aes128-cbc\n' > /etc/ssh/sshd_config.d/10-local.conf
