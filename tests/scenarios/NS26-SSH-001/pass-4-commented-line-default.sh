#!/bin/sh
# expect: pass
# why: commented out: OpenSSH's own default, prohibit-password
sed -i 's/^PermitRootLogin/#PermitRootLogin/; /^AuthenticationMethods/d' /etc/ssh/sshd_config
