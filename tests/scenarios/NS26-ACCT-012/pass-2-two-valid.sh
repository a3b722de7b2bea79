#!/bin/sh
# expect: pass
mkdir -p /etc/nanbu-secops
cat > /etc/nanbu-secops/exemptions.yml <<'EOF'
exemptions:
  - account: backup
    controls: [NS26-ACCT-010]
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2027-03-31
  - account: svc
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2027-01-01
EOF
