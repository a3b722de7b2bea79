#!/bin/sh
# expect: pass
# connection: user=alice,host=t.example,addr=10.0.0.1,laddr=127.0.0.1,lport=22
printf 'Match User alice\n  PasswordAuthentication yes\n' >> /etc/ssh/sshd_config
