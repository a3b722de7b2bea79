#!/bin/sh
# expect: pass
mkdir -p "$ROOT/opt/wps-office"
