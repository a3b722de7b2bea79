#!/bin/sh
# expect: pass
# connection: user=root,host=t.example,addr=10.0.0.1,laddr=127.0.0.1,lport=22
# why: PermitRootLogin yes while AuthenticationMethods publickey shuts passwords out
sed -i 's/^PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config
