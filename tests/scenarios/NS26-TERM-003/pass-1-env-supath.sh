#!/bin/sh
# expect: pass
printf 'ENV_SUPATH PATH=/usr/sbin:/usr/bin:/sbin:/bin\n' >> /etc/login.defs
