#!/bin/sh
# expect: pass
# why: PasswordAuthentication yes, but AuthenticationMethods publickey
printf 'PasswordAuthentication yes\n' > /etc/ssh/sshd_config.d/10-local.conf
