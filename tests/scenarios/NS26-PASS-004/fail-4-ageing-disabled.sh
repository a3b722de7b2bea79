#!/bin/sh
# expect: fail
# why: an empty last-change field
sed -i 's/^alice:\([^:]*\):[0-9]*:/alice:\1::/' /etc/shadow
