#!/bin/sh
# expect: fail
# why: 600 x 3 = 1800 s
printf 'ClientAliveInterval 600\n' > /etc/ssh/sshd_config.d/10-local.conf
