#!/bin/sh
# expect: fail
# why: PasswordAuthentication defaults to yes
sed -i '/^AuthenticationMethods/d' /etc/ssh/sshd_config
