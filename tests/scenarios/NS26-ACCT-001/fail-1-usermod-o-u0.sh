#!/bin/sh
# expect: fail
usermod -o -u 0 alice
