#!/bin/sh
# expect: pass
# why: wildcards, allowed in host key lists, matching only strong names
printf 'HostKeyAlgorithms ssh-ed25519*,rsa-sha2-*\n' > /etc/ssh/sshd_config.d/10-local.conf
