#!/bin/sh
# expect: fail
mkdir -p /etc/nanbu-secops
cat > /etc/nanbu-secops/exemptions.yml <<'EOF'
exemptions:
  - account: backup
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2027-03-31
  - account: svc
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2026-10-31
EOF
