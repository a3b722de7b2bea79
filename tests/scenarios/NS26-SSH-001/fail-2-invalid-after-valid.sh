#!/bin/sh
# expect: fail
# why: sshd refuses the whole file
printf 'PermitRootLogin wrong_value\n' >> /etc/ssh/sshd_config
