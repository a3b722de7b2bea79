#!/bin/sh
# expect: pass
# why: the old value kept as a comment, the new one tab-separated
sed -i 's/^PASS_MAX_DAYS.*/#PASS_MAX_DAYS 99999\nPASS_MAX_DAYS\t90/' /etc/login.defs
