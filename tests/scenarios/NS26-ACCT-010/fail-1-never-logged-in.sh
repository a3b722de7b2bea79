#!/bin/sh
# expect: fail
# why: created before the cut and never used
chage -d 2025-01-01 alice
