#!/bin/sh
# expect: pass
# why: locked until an administrator unlocks
sed -i 's/^unlock_time.*/unlock_time = never/' /etc/security/faillock.conf
