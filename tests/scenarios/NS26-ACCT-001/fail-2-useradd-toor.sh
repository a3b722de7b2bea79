#!/bin/sh
# expect: fail
# why: a second superuser under another name
useradd -o -u 0 -g 0 -M -s /bin/bash toor
