#!/bin/sh
# expect: fail
printf 'alice ALL=(ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/alice
