#!/bin/sh
# expect: pass
sed -i '/^AuthenticationMethods/d' /etc/ssh/sshd_config
printf 'PasswordAuthentication no\n' > /etc/ssh/sshd_config.d/10-local.conf
