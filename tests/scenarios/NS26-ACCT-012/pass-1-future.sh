#!/bin/sh
# expect: pass
mkdir -p /etc/nanbu-secops
cat > /etc/nanbu-secops/exemptions.yml <<'EOF'
exemptions:
  - account: backup
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2099-12-31
EOF
