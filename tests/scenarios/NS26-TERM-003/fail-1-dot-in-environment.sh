#!/bin/sh
# expect: fail
printf 'PATH="/usr/bin:.:/bin"\n' > /etc/environment
