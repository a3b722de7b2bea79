#!/bin/sh
# expect: pass
userdel svc
