#!/bin/sh
# expect: fail
printf 'User_Alias ADMINS = alice\nADMINS ALL = (ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/alias
