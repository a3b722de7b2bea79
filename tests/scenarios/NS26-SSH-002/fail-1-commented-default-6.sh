#!/bin/sh
# expect: fail
# why: commented out: OpenSSH's default 6
sed -i 's/^MaxAuthTries/#MaxAuthTries/' /etc/ssh/sshd_config
