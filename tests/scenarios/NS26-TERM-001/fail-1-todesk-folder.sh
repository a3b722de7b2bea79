#!/bin/sh
# expect: fail
mkdir -p "$ROOT/opt/todesk/bin"
