#!/bin/sh
# expect: fail
printf 'MACs hmac-sha1,hmac-sha2-256\n' > /etc/ssh/sshd_config.d/10-local.conf
