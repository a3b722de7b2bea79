#!/bin/sh
# expect: fail
printf 'HostKeyAlgorithms +ssh-rsa\n' > /etc/ssh/sshd_config.d/10-local.conf
