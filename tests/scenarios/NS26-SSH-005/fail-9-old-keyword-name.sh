#!/bin/sh
# expect: fail
# why: PubkeyAcceptedKeyTypes, the name before 8.5, still sets the accepted user-key signatures
printf 'PubkeyAcceptedKeyTypes +ssh-rsa\n' > /etc/ssh/sshd_config.d/10-local.conf
