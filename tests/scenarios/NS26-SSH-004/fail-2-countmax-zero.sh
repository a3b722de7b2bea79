#!/bin/sh
# expect: fail
printf 'ClientAliveCountMax 0\n' > /etc/ssh/sshd_config.d/10-local.conf
