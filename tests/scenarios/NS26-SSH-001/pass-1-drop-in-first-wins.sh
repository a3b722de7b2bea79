#!/bin/sh
# expect: pass
# why: the main file says yes, but the drop-in read earlier says no
sed -i 's/^PermitRootLogin.*/PermitRootLogin yes/; /^AuthenticationMethods/d' /etc/ssh/sshd_config
printf 'PermitRootLogin no\n' > /etc/ssh/sshd_config.d/10-local.conf
