#!/bin/bash
# The systemd VM stage's checks (xtask/src/vm/systemd). Runs at every boot from the read-only
# disk /payload; the phase it reached is kept on the root disk, which survives the reboot.
# Prints `test systemd::NAME ... ok|FAILED` per check, a cargo-style `test result:` line and
# `vm: RESULT pass|fail`, then powers off (or reboots after the first phase).
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/payload/bin
export DEBIAN_FRONTEND=noninteractive SYSTEMD_PAGER= SYSTEMD_COLORS=0
STATE=/var/lib/mptcpd-vm-stage
mkdir -p "$STATE"
phase=$(cat "$STATE/phase" 2>/dev/null || echo 1)
passed=0
failed=0
V1=/payload/debs/mptcpd-rs-1.deb
V2=/payload/debs/mptcpd-rs-2.deb
HAND=192.0.2.50

say() { echo "vm: $*"; }
# check NAME COMMAND...: runs COMMAND, its output shown when it fails.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        echo "test systemd::$name ... ok"
        passed=$((passed + 1))
    else
        echo "test systemd::$name ... FAILED"
        {
            echo "$out" | tail -n 40
            echo "-- endpoints:"
            ip mptcp endpoint show
            echo "-- journalctl -u mptcp (last lines):"
            journalctl -u mptcp -o short-monotonic -n 15 --no-pager
        } 2>&1 | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
}
# until_true SECONDS COMMAND...: polls COMMAND (kernel or systemd state) for at most SECONDS.
until_true() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    while ! "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$end" ] && { "$@"; return 1; }
        sleep 0.5
    done
}
finish() {
    echo "test result: $([ "$failed" = 0 ] && echo ok || echo FAILED). $passed passed; $failed failed; 0 ignored"
    say "RESULT $([ "$failed" = 0 ] && echo pass || echo fail)"
}

# The endpoints with their ids, sorted.
endpoint_ids() { ip mptcp endpoint show | sort; }
has_endpoint() { ip mptcp endpoint show | grep -q "^$1 "; }
no_endpoint() { ! has_endpoint "$1"; }
no_duplicates() { [ -z "$(ip mptcp endpoint show | awk '{print $1}' | sort | uniq -d)" ]; }
main_pid() { systemctl show -p MainPID --value mptcp; }
active() { [ "$(systemctl is-active "$1")" = active ]; }
# The demo unit's listener on :8080 is MPTCP (ss -M without -t lists MPTCP sockets only; an
# MPTCP listener also has a TCP one, which -t lists).
demo_is_mptcp() { ss -Mln | grep -q ':8080 '; }
demo_is_tcp() { ss -tln | grep -q ':8080 ' && ! demo_is_mptcp; }

load_modules() {
    for m in /payload/modules/*.ko; do insmod "$m" 2>/dev/null || true; done
}

# Two paths between the root namespace (client, the daemon's) and the namespace srv.
paths() {
    ip netns add srv
    ip link add v0 type veth peer name s0 netns srv
    ip link add v1 type veth peer name s1 netns srv
    ip addr add 198.51.100.1/24 dev v0
    ip addr add 203.0.113.1/24 dev v1
    ip link set v0 up
    ip link set v1 up
    ip -n srv addr add 198.51.100.2/24 dev s0
    ip -n srv addr add 203.0.113.2/24 dev s1
    ip -n srv link set s0 up
    ip -n srv link set s1 up
    ip -n srv link set lo up
    ip mptcp limits set subflows 4 add_addr_accepted 4
    ip -n srv mptcp limits set subflows 4 add_addr_accepted 4
}

# Subflows of the live connection (client side, to port 5000).
subflows() { ss -tnH state established '( dport = :5000 )' | wc -l; }

phase1() {
    say "phase 1: $(uname -r), systemd $(systemctl --version | head -n1 | awk '{print $2}')"
    load_modules
    check c_daemon_installed_first dpkg -s mptcpd mptcpd-plugins mptcpize libmptcpwrap0
    # The administrator's change to the C package's conffile, kept with --force-confold.
    sed -i 's/^path-manager=addr_adv$/path-manager=addr_adv\naddr-flags=subflow\nnotify-flags=existing,skip_link_local,skip_loopback/' /etc/mptcpd/mptcpd.conf
    cp /etc/mptcpd/mptcpd.conf "$STATE/conf.before"
    # The C daemon would add endpoints for the veths' link-local addresses and leave them.
    systemctl stop mptcp
    paths
    ip mptcp endpoint add "$HAND" id 50 signal
    check install_over_the_c_packages apt-get install -y -q -o Dpkg::Options::=--force-confold "$V1"
    check c_packages_gone bash -c '! dpkg -s mptcpd 2>/dev/null | grep -q "^Status: install ok installed"'
    check modified_conffile_kept cmp /etc/mptcpd/mptcpd.conf "$STATE/conf.before"
    # apt knows a repository with the C packages (Debian's archives, here local): an upgrade
    # must not install them again (ours conflicts with and replaces them).
    echo "deb [trusted=yes] file:/srv/repo ./" > /etc/apt/sources.list.d/local.list
    (cd /srv/repo && apt-ftparchive packages . > Packages && apt-ftparchive release . > Release)
    check apt_sees_the_c_packages bash -c 'apt-get update -q -o Dir::Etc::sourcelist=/dev/null && apt-cache policy mptcpd | tee /dev/stderr | grep -q "Candidate: 0.12"'
    check apt_upgrade_keeps_ours bash -c 'apt-get upgrade -y -q && dpkg -s mptcpd-rs | grep -q "^Status: install ok installed" && ! dpkg -s mptcpd 2>/dev/null | grep -q "^Status: install ok installed"'

    systemctl start mptcp
    check started_active_ready until_true 60 active mptcp
    check ready_in_journal until_true 30 bash -c 'journalctl -u mptcp -o cat | grep -q "^ready"'
    check journal_priorities bash -c 'journalctl -u mptcp -o verbose | grep -q "PRIORITY=6" && journalctl -u mptcp -p info -o cat | grep -q ready && ! journalctl -u mptcp -p warning -o cat | grep -q "^ready"'
    check endpoints_for_the_vm_addresses until_true 30 bash -c 'ip mptcp endpoint show | grep -q "^198.51.100.1 .*subflow" && ip mptcp endpoint show | grep -q "^203.0.113.1 .*subflow"'
    check hardening_seccomp_and_caps bash -c 'pid=$(systemctl show -p MainPID --value mptcp); grep -q "^Seccomp:[[:space:]]*2" /proc/$pid/status && grep -q "^NoNewPrivs:[[:space:]]*1" /proc/$pid/status'
    check hardening_bpf_loaded bash -c 'journalctl -u mptcp -o cat | grep -q "socket observer attached" && ! journalctl -u mptcp -o cat | grep -q "socket observer off"'
    # ProtectKernelTunables= would mount bpffs read-only for the unit (systemd lists /sys/fs/bpf
    # itself); the unit makes /sys read-only by hand with /sys/fs/bpf writable.
    say "note: bpffs as the unit sees it: $(nsenter -t "$(systemctl show -p MainPID --value mptcp)" -m findmnt -no FSTYPE,OPTIONS /sys/fs/bpf 2>&1 | tr '\n' ' ')"
    check hardening_tunables_read_only bash -c 'pid=$(systemctl show -p MainPID --value mptcp); for p in /sys /proc/sys; do nsenter -t "$pid" -m findmnt -no OPTIONS "$p" | grep -q "^ro," || exit 1; done; nsenter -t "$pid" -m findmnt /proc/kallsyms >/dev/null'
    check hardening_pins_under_the_unit bash -c '[ -n "$(ls /sys/fs/bpf/mptcpd 2>/dev/null)" ] && ! journalctl -u mptcp -o cat | grep "not pinned"'
    check hardening_dbus_served bash -c 'busctl --system status org.mptcpd.Mptcpd | grep -q "^PID=$(systemctl show -p MainPID --value mptcp)$"'
    say "systemd-analyze security: $(systemd-analyze security mptcp.service 2>/dev/null | tail -n1)"

    # Reload: [policy] skip-interfaces takes effect at once (README): v1's address loses its
    # endpoint, and gets it back when the line goes.
    printf '\n[policy]\nskip-interfaces=v1\n' >> /etc/mptcpd/mptcpd.conf
    systemctl reload mptcp
    check reload_applies_policy until_true 30 no_endpoint 203.0.113.1
    cp "$STATE/conf.before" /etc/mptcpd/mptcpd.conf
    systemctl reload mptcp
    check reload_back until_true 30 has_endpoint 203.0.113.1

    # Restart during a live two-subflow connection: the endpoints are handed over (same ids),
    # the connection keeps its second subflow.
    ip netns exec srv mptcp-xfer server --listen 0.0.0.0:5000 > "$STATE/server.out" 2>&1 &
    until_true 10 bash -c 'ip netns exec srv ss -Mltn | grep -q ":5000 "'
    mkfifo "$STATE/hold"
    mptcp-xfer client --connect 198.51.100.2:5000 --bytes 1024 --wait-extra-subflows 1 --hold \
        < "$STATE/hold" > "$STATE/client.out" 2>&1 &
    client=$!
    exec 3> "$STATE/hold"
    check live_connection_has_two_subflows until_true 30 bash -c '[ "$(ss -tnH state established "( dport = :5000 )" | wc -l)" = 2 ]'
    before=$(endpoint_ids)
    pid_before=$(main_pid)
    systemctl restart mptcp
    check restart_active until_true 60 active mptcp
    check restart_new_process bash -c "[ \"\$(systemctl show -p MainPID --value mptcp)\" != $pid_before ]"
    check restart_keeps_endpoints_and_ids bash -c "[ \"\$(ip mptcp endpoint show | sort)\" = \"$before\" ]"
    check restart_logged_hand_over bash -c 'journalctl -u mptcp -o cat | grep -q "left for the next one to adopt"'
    check restart_keeps_second_subflow bash -c '[ "$(ss -tnH state established "( dport = :5000 )" | wc -l)" = 2 ]'
    echo >&3
    exec 3>&-
    wait "$client"
    check live_connection_ends_cleanly test "$?" = 0
    cat "$STATE/client.out"

    # A crash: systemd restarts the daemon (Restart=on-failure), which adopts its endpoints.
    pid_before=$(main_pid)
    systemctl kill -s KILL mptcp
    check kill_restarted until_true 60 bash -c "[ \"\$(systemctl show -p MainPID --value mptcp)\" != 0 ] && [ \"\$(systemctl show -p MainPID --value mptcp)\" != $pid_before ] && [ \"\$(systemctl is-active mptcp)\" = active ]"
    check kill_adopted_same_ids until_true 30 bash -c "[ \"\$(ip mptcp endpoint show | sort)\" = \"$before\" ]"
    check kill_no_duplicates no_duplicates
    check kill_restart_counted bash -c '[ "$(systemctl show -p NRestarts --value mptcp)" -ge 1 ]'

    # A stop removes ours only.
    systemctl stop mptcp
    check stop_removes_ours until_true 30 bash -c '[ "$(ip mptcp endpoint show | awk "{print \$1}")" = "'"$HAND"'" ]'
    systemctl start mptcp
    until_true 60 active mptcp

    # mptcpize on a unit running a static plain-TCP server (busybox httpd).
    mkdir -p /srv/www
    cat > /etc/systemd/system/demo.service <<'EOF'
[Unit]
Description=static plain-TCP demo server
[Service]
ExecStart=/bin/busybox httpd -f -p 0.0.0.0:8080 -h /srv/www
[Install]
WantedBy=multi-user.target
EOF
    systemctl daemon-reload
    systemctl enable --now demo
    check demo_plain_tcp until_true 30 demo_is_tcp
    check mptcpize_enable mptcpize enable demo.service
    systemctl restart demo
    check demo_mptcp_after_enable until_true 30 demo_is_mptcp
    check mptcpize_disable mptcpize disable demo.service
    systemctl restart demo
    check demo_tcp_after_disable until_true 30 demo_is_tcp
    check mptcpize_enable_again mptcpize enable demo.service
    systemctl restart demo
    check demo_mptcp_before_reboot until_true 30 demo_is_mptcp
    echo 2 > "$STATE/phase"
    finish
    sync
    systemctl reboot
}

phase2() {
    say "phase 2 (after the reboot)"
    load_modules
    check mptcp_active_after_reboot until_true 60 active mptcp
    check demo_mptcp_after_reboot until_true 60 demo_is_mptcp
    paths
    ip mptcp endpoint add "$HAND" id 50 signal
    check endpoints_after_reboot until_true 30 bash -c 'has_endpoint() { ip mptcp endpoint show | grep -q "^$1 "; }; has_endpoint 198.51.100.1 && has_endpoint 203.0.113.1'
    before=$(endpoint_ids)
    check upgrade_to_newer apt-get install -y -q -o Dpkg::Options::=--force-confold "$V2"
    check upgrade_version bash -c 'dpkg-query -W -f "\${Version}" mptcpd-rs | grep -q -- "-2$"'
    check upgrade_active until_true 60 active mptcp
    check upgrade_keeps_endpoints bash -c "[ \"\$(ip mptcp endpoint show | sort)\" = \"$before\" ]"
    systemctl restart demo
    check demo_mptcp_after_upgrade until_true 30 demo_is_mptcp
    # The drop-in's ExecStartPre names mptcpize: disabled before the package goes.
    mptcpize disable demo.service
    systemctl restart demo
    check purge dpkg --purge mptcpd-rs
    check purge_leaves_no_endpoint bash -c '[ "$(ip mptcp endpoint show | awk "{print \$1}")" = "'"$HAND"'" ]'
    check purge_leaves_no_pin bash -c '[ ! -e /sys/fs/bpf/mptcpd ] && ! ls /sys/fs/bpf | grep mptcp'
    check purge_leaves_no_unit bash -c '[ ! -e /lib/systemd/system/mptcp.service ] && [ ! -e /etc/systemd/system/multi-user.target.wants/mptcp.service ] && ! systemctl cat mptcp.service'
    check purge_leaves_no_group bash -c '! getent group mptcpd'
    # What is left may only be the C package's: removed (not purged) by the install, its
    # conffile stays in dpkg's config-files state until `dpkg --purge mptcpd`.
    check purge_leaves_no_file bash -c '
        ! dpkg -L mptcpd-rs >/dev/null 2>&1 || exit 1
        for p in /etc/mptcpd/mptcpd.conf /etc/mptcpd /run/mptcpd /usr/libexec/mptcpd \
            /usr/bin/mptcpctl /usr/bin/mptcpize /usr/lib/mptcpize \
            /usr/lib/systemd/system/mptcp.service /usr/lib/sysusers.d/mptcpd.conf \
            /usr/share/dbus-1/system.d/org.mptcpd.Mptcpd.conf /var/lib/mptcpd-rs; do
            [ -e "$p" ] || continue
            owner=$(dpkg -S "$p" 2>/dev/null)
            echo "left: $p ($owner)"
            case "$owner" in mptcpd:*|"mptcpd, "*) ;; *) exit 1 ;; esac
        done'
    echo 3 > "$STATE/phase"
    finish
    systemctl poweroff
}

case "$phase" in
1) phase1 ;;
2) phase2 ;;
*) say "phase $phase: nothing left to run"; say "RESULT fail"; systemctl poweroff ;;
esac
