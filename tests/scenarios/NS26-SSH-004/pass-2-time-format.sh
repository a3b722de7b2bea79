#!/bin/sh
# expect: pass
# why: 5m is 300 seconds
sed -i 's/^ClientAliveInterval.*/ClientAliveInterval=5m/' /etc/ssh/sshd_config
