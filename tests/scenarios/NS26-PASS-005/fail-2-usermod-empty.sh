#!/bin/sh
# expect: fail
usermod -p '' svc
