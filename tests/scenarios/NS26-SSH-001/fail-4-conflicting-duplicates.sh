#!/bin/sh
# expect: fail
# why: yes then no in the same file: the first wins
sed -i '/^AuthenticationMethods/d; s/^PermitRootLogin.*/PermitRootLogin yes\nPermitRootLogin no/' /etc/ssh/sshd_config
