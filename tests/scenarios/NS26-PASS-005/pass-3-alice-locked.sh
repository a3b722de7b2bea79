#!/bin/sh
# expect: pass
passwd -l alice
