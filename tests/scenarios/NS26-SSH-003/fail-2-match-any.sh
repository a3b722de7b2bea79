#!/bin/sh
# expect: fail
# connection: user=alice,host=t.example,addr=10.0.0.1,laddr=127.0.0.1,lport=22
# why: a Match block opens passwords again
printf 'Match User alice\n  AuthenticationMethods any\n  PasswordAuthentication yes\n' >> /etc/ssh/sshd_config
