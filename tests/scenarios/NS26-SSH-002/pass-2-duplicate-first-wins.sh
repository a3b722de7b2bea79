#!/bin/sh
# expect: pass
sed -i 's/^MaxAuthTries.*/MaxAuthTries 2\nMaxAuthTries 10/' /etc/ssh/sshd_config
