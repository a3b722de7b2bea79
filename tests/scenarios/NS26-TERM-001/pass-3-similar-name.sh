#!/bin/sh
# expect: pass
# why: a folder named like a product but not it
mkdir -p "$ROOT/opt/todesk.bak"
