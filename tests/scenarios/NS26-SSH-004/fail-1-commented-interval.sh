#!/bin/sh
# expect: fail
# why: OpenSSH's default 0: never checked
sed -i 's/^ClientAliveInterval/#ClientAliveInterval/' /etc/ssh/sshd_config
