#!/bin/sh
# expect: pass
chage -d 2026-11-01 alice
