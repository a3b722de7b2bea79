#!/bin/sh
# expect: fail
# why: an empty entry is the current folder
printf 'Defaults secure_path="/usr/sbin:/usr/bin::/bin"\n' > /etc/sudoers.d/path
