#!/bin/sh
# expect: fail
# why: an empty password field in /etc/passwd itself
sed -i 's/^backup:x:/backup::/' /etc/passwd
