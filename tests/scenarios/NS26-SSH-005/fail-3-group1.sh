#!/bin/sh
# expect: fail
printf 'KexAlgorithms +diffie-hellman-group1-sha1\n' > /etc/ssh/sshd_config.d/10-local.conf
