#!/bin/sh
# expect: fail
chage -d 2025-01-01 alice
mkdir -p /etc/nanbu-secops
cat > /etc/nanbu-secops/exemptions.yml <<'EOF'
exemptions:
  - account: alice
    controls: [NS26-ACCT-011]
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2099-12-31
EOF
