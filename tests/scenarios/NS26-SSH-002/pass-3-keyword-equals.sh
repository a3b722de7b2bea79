#!/bin/sh
# expect: pass
sed -i 's/^MaxAuthTries.*/maxauthtries = 4/' /etc/ssh/sshd_config
