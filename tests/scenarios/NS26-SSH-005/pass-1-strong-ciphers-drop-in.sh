#!/bin/sh
# expect: pass
printf 'Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\n' > /etc/ssh/sshd_config.d/10-local.conf
