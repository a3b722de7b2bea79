#!/bin/sh
# expect: pass
sed -i '/^AuthenticationMethods/d; s/^PermitRootLogin.*/permitrootlogin=no/' /etc/ssh/sshd_config
