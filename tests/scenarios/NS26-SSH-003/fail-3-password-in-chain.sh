#!/bin/sh
# expect: fail
printf 'AuthenticationMethods publickey,password\n' > /etc/ssh/sshd_config.d/10-local.conf
