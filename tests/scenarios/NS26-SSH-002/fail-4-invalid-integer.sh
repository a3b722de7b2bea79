#!/bin/sh
# expect: fail
# why: sshd refuses 3x
printf 'MaxAuthTries 3x\n' >> /etc/ssh/sshd_config
