#!/bin/sh
# expect: pass
useradd -M -u 1501 -s /bin/bash bob
