#!/bin/sh
# expect: pass
# connection: user=root,host=t.example,addr=10.0.0.1,laddr=127.0.0.1,lport=22
# why: a Match block lets root in, but inherits AuthenticationMethods publickey
printf 'Match User root\n  PermitRootLogin yes\n' >> /etc/ssh/sshd_config
