#!/bin/sh
# expect: pass
# why: backup cannot log in: not a person's account
printf 'backup ALL=(root) NOPASSWD: /usr/bin/rsync\n' > /etc/sudoers.d/backup
