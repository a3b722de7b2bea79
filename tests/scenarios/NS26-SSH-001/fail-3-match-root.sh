#!/bin/sh
# expect: fail
# connection: user=root,host=t.example,addr=10.0.0.1,laddr=127.0.0.1,lport=22
# why: a Match block lets root in with a password
printf 'Match User root\n  PermitRootLogin yes\n  AuthenticationMethods any\n  PasswordAuthentication yes\n' >> /etc/ssh/sshd_config
