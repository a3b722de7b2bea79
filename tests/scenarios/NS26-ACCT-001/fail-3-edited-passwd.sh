#!/bin/sh
# expect: fail
sed -i 's/^svc:x:998:/svc:x:0:/' /etc/passwd
