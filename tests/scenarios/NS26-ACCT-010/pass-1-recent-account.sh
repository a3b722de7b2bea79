#!/bin/sh
# expect: pass
chage -d 2026-10-01 alice
