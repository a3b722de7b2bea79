#!/bin/sh
# expect: fail
# connection: user=alice,host=t.example,addr=10.0.0.1,laddr=127.0.0.1,lport=22
printf 'Match User alice\n  ClientAliveInterval 0\n' >> /etc/ssh/sshd_config
