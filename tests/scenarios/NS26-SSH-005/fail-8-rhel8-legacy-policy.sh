#!/bin/sh
# expect: fail
# families: redhat
# why: RHEL 8: the policy on the command line offers CBC
rm -f /etc/ssh/sshd_config.d/50-redhat.conf
mkdir -p "$ROOT/usr/lib/systemd/system"
cat > "$ROOT/usr/lib/systemd/system/sshd.service" <<'UNIT'
[Unit]
Description=OpenSSH server daemon

[Service]
Type=notify
EnvironmentFile=-/etc/crypto-policies/back-ends/opensshserver.config
EnvironmentFile=-/etc/sysconfig/sshd
ExecStart=/usr/sbin/sshd -D $OPTIONS $CRYPTO_POLICY
UNIT
rm -f /etc/crypto-policies/back-ends/opensshserver.config
cat > /etc/crypto-policies/back-ends/opensshserver.config <<'POLICY'
CRYPTO_POLICY='-oCiphers=aes256-cbc,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr -oMACs=hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com -oKexAlgorithms=curve25519-sha256,ecdh-sha2-nistp256 -oHostKeyAlgorithms=ssh-ed25519,rsa-sha2-512 -oPubkeyAcceptedKeyTypes=ssh-ed25519,rsa-sha2-512'
POLICY
mkdir -p /etc/sysconfig
printf '# Configuration file for the sshd service.\n# CRYPTO_POLICY=\n' > /etc/sysconfig/sshd
