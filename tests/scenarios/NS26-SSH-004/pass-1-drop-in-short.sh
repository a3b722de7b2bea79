#!/bin/sh
# expect: pass
printf 'ClientAliveInterval 120\nClientAliveCountMax 2\n' > /etc/ssh/sshd_config.d/10-local.conf
