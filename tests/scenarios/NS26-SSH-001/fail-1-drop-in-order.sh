#!/bin/sh
# expect: fail
# why: 10-a.conf is read before 20-b.conf: its yes wins
sed -i '/^AuthenticationMethods/d' /etc/ssh/sshd_config
printf 'PermitRootLogin yes\n' > /etc/ssh/sshd_config.d/10-a.conf
printf 'PermitRootLogin no\n' > /etc/ssh/sshd_config.d/20-b.conf
