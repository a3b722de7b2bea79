#!/bin/sh
# expect: pass
printf 'MaxAuthTries 3\n' > /etc/ssh/sshd_config.d/10-local.conf
