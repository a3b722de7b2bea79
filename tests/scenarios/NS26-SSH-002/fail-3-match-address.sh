#!/bin/sh
# expect: fail
# connection: user=alice,host=t.example,addr=10.0.0.1,laddr=127.0.0.1,lport=22
printf 'Match Address 10.0.0.0/8\n  MaxAuthTries 8\n' >> /etc/ssh/sshd_config
