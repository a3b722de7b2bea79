#!/bin/sh
# expect: fail
# why: the family's admin group (sudo or wheel)
g=$(grep -q '^sudo:' /etc/group && echo sudo || echo wheel)
printf '%%%s ALL=(ALL) NOPASSWD: ALL\n' "$g" > /etc/sudoers.d/admins
