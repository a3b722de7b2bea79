#!/bin/sh
# expect: pass
printf 'Defaults:svc !authenticate\n' > /etc/sudoers.d/svc
