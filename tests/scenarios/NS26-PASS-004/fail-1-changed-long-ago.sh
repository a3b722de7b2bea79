#!/bin/sh
# expect: fail
chage -d 2026-06-01 alice
