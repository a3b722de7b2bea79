#!/bin/sh
# expect: pass
usermod -u 1600 alice
