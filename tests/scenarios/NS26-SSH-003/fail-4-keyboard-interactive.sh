#!/bin/sh
# expect: fail
sed -i 's/^KbdInteractiveAuthentication.*/KbdInteractiveAuthentication yes/' /etc/ssh/sshd_config
printf 'AuthenticationMethods keyboard-interactive\nPasswordAuthentication no\n' > /etc/ssh/sshd_config.d/10-local.conf
