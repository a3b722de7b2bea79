#!/bin/sh
# expect: pass
printf 'alice ALL=(ALL) ALL\n' > /etc/sudoers.d/alice
