#!/bin/sh
# expect: fail
# why: last change 0: a change is forced at the next login
chage -d 0 alice
