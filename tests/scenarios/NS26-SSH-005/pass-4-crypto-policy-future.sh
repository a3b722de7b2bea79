#!/bin/sh
# expect: pass
# families: redhat
# why: the crypto-policies back-end replaced by a stricter policy's
rm -f /etc/crypto-policies/back-ends/opensshserver.config
printf 'Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr\nMACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com\nKexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512\nHostKeyAlgorithms ssh-ed25519,rsa-sha2-512\nPubkeyAcceptedAlgorithms ssh-ed25519,rsa-sha2-512\n' > /etc/crypto-policies/back-ends/opensshserver.config
