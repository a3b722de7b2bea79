#!/bin/sh
# expect: pass
printf '[7] [01000] [ts/0] [alice   ] [pts/0       ] [10.0.0.5            ] [10.0.0.5       ] [2026-11-20T01:00:00,000000+00:00]\n[7] [01001] [ts/1] [alice   ] [pts/1       ] [10.0.0.6            ] [10.0.0.6       ] [2026-11-20T01:05:00,000000+00:00]\n' | utmpdump -r -o "$ROOT/var/log/wtmp" 2>/dev/null
mkdir -p /etc/nanbu-secops
cat > /etc/nanbu-secops/exemptions.yml <<'EOF'
exemptions:
  - account: alice
    controls: [NS26-ACCT-011]
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2099-12-31
EOF
