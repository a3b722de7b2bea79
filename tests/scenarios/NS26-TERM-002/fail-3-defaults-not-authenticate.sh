#!/bin/sh
# expect: fail
printf 'Defaults !authenticate\n' > /etc/sudoers.d/noauth
