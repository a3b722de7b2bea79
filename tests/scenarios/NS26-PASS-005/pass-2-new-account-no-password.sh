#!/bin/sh
# expect: pass
# why: useradd leaves the password locked (!)
useradd -M -s /bin/bash bob
