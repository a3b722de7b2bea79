#!/bin/sh
# expect: pass
usermod -p '!' svc
