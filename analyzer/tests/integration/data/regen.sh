#!/usr/bin/env bash
# Regenerates the real-format parser fixtures in this directory.
# Needs root and: iptables (nft + legacy), nftables, conntrack, ipset, nfacct, iproute2.
# Everything happens inside a scratch network namespace that is always deleted;
# the root netns is never touched and no packet leaves the scratch netns.
set -euo pipefail
cd "$(dirname "$0")"

NS="nsnap-parse-$$-$RANDOM"
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }

in_ns ip link set lo up
# Objects that the ruleset references must exist before it is loaded.
in_ns nfacct add ct_state_invalid_dropped_pkts
for s in cali40all-hosts-net cali40masq-ipam-pools cali40all-vxlan-net; do
	in_ns ipset create "$s" hash:net
done
in_ns ipset add cali40all-hosts-net 192.168.49.0/24
in_ns ipset add cali40masq-ipam-pools 10.244.0.0/16
in_ns ipset create KUBE-LOOP-BACK hash:ip,port,ip comment
in_ns ipset add KUBE-LOOP-BACK 10.244.1.5,tcp:8080,10.244.1.5 comment "ns1/web:http"
in_ns ipset create KUBE-CLUSTER-IP hash:ip,port
in_ns ipset add KUBE-CLUSTER-IP 10.96.0.1,tcp:443
in_ns ipset add KUBE-CLUSTER-IP 10.96.0.10,udp:53
in_ns ipset save > ipset-save.txt

# Both backends in one netns: nft-save then warns about legacy tables (NF001 shape).
# (order matters: iptables-nft-save 1.8.9 only warns when legacy was loaded last)
in_ns iptables-nft-restore < kube-proxy-restore.txt
in_ns iptables-legacy-restore < kube-proxy-restore.txt
in_ns ip6tables-nft-restore < ip6tables-restore.txt
# A little loopback traffic so some counters are non-zero.
in_ns bash -c 'for i in 1 2 3; do (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; echo x > /dev/udp/127.0.0.1/9; done' || true
# The legacy warning goes to stderr; with 2>&1 into a file it lands mid-line (stdout is
# block-buffered), so stderr is captured apart and put in front.
TMP=$(mktemp -d); trap 'cleanup; rm -rf "$TMP"' EXIT INT TERM
in_ns iptables-nft-save -c > "$TMP/out" 2> "$TMP/err"
cat "$TMP/err" "$TMP/out" > iptables-nft-save.txt
in_ns iptables-legacy-save -c > iptables-legacy-save.txt
in_ns ip6tables-nft-save -c > "$TMP/out" 2> "$TMP/err"
cat "$TMP/err" "$TMP/out" > ip6tables-nft-save.txt
in_ns iptables-nft -F; in_ns iptables-nft -X
for t in nat mangle raw; do in_ns iptables-nft -t "$t" -F; in_ns iptables-nft -t "$t" -X; done
in_ns ip6tables-nft -t nat -F; in_ns ip6tables-nft -t nat -X; in_ns ip6tables-nft -F; in_ns ip6tables-nft -X

# nftables kube-proxy: both shapes, each alone in the ruleset.
in_ns nft flush ruleset
in_ns nft -f nft-kube-proxy-vmap.nft
in_ns nft -j list ruleset > nft-kube-proxy-vmap.json
in_ns nft flush ruleset
in_ns nft -f nft-kube-proxy-direct.nft
in_ns nft -j list ruleset > nft-kube-proxy-direct.json
in_ns nft flush ruleset

# Conntrack: entries are inserted by hand (no traffic), with accounting on.
in_ns sysctl -qw net.netfilter.nf_conntrack_acct=1
ct() { in_ns conntrack -I "$@" 2>/dev/null; }
ct -p tcp -s 10.244.1.3 -d 10.96.10.10 --sport 40000 --dport 80 -r 10.244.1.5 -q 10.244.1.3 \
	--reply-port-src 8080 --reply-port-dst 40000 --state ESTABLISHED -u ASSURED -t 431999 -m 0x4000
ct -p tcp -s 10.244.1.3 -d 10.96.10.10 --sport 40001 --dport 80 -r 10.244.1.6 -q 10.244.1.3 \
	--reply-port-src 8080 --reply-port-dst 40001 --state SYN_SENT -t 100
ct -p tcp -s 10.244.1.4 -d 10.96.0.1 --sport 51000 --dport 443 -r 192.168.49.2 -q 10.244.1.4 \
	--reply-port-src 6443 --reply-port-dst 51000 --state TIME_WAIT -u ASSURED -t 117
ct -p udp -s 10.244.1.3 -d 10.96.0.10 --sport 5353 --dport 53 -r 10.244.0.2 -q 10.244.1.3 \
	--reply-port-src 53 --reply-port-dst 5353 -t 30 --zone 7
ct -p icmp -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 --icmp-type 8 --icmp-code 0 --icmp-id 1234 -t 29
ct -p udp -s fd00:10:244::3 -d fd00:10:96::a --sport 5353 --dport 53 -r fd00:10:244::2 -q fd00:10:244::3 \
	--reply-port-src 53 --reply-port-dst 5353 -t 30
ct -p tcp -s 2001:db8::1 -d 2001:db8::2 --sport 33000 --dport 8443 -r 2001:db8::2 -q 2001:db8::1 \
	--reply-port-src 8443 --reply-port-dst 33000 --state ESTABLISHED -u ASSURED -t 300
ct -p sctp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 6000 -r 10.0.0.2 -q 10.0.0.1 \
	--reply-port-src 6000 --reply-port-dst 5000 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 200
in_ns cat /proc/net/nf_conntrack > proc-nf_conntrack.txt
in_ns conntrack -L > conntrack-L.txt 2>/dev/null
in_ns cat /proc/net/stat/nf_conntrack > stat-nf_conntrack.txt
in_ns sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter net.ipv4.conf.lo.rp_filter \
	net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max \
	net.netfilter.nf_conntrack_buckets net.ipv4.ip_local_port_range > sysctl-a.txt
echo "fixtures regenerated in $(pwd) (netns $NS removed on exit)"
