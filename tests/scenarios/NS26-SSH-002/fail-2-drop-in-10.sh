#!/bin/sh
# expect: fail
printf 'MaxAuthTries 10\n' > /etc/ssh/sshd_config.d/10-local.conf
