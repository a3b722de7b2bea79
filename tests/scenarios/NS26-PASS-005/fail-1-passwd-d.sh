#!/bin/sh
# expect: fail
# why: passwd -d deletes the password
passwd -d alice
