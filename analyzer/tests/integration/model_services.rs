//! Services as the model builds them from real rule formats (the parser's fixtures in
//! tests/integration/data: kube-proxy's restore input, iptables-nft/legacy save output, and
//! kube-proxy nftables mode in both shapes).

use netsnap_analyzer::evidence::Excerpt;
use netsnap_analyzer::model::services::{FrontendKind, Protocol, Proxier, Service};
use netsnap_analyzer::model::{iptables, nft};
use netsnap_analyzer::parse;
use std::collections::BTreeMap;

fn data(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/integration/data")
            .join(name),
    )
    .expect("parser fixture")
}

fn by_name(services: &[Service]) -> BTreeMap<String, &Service> {
    services.iter().map(|s| (s.display_name(), s)).collect()
}

fn endpoints(s: &Service) -> Vec<String> {
    s.endpoints
        .iter()
        .map(|e| format!("{}:{}", e.ip, e.port))
        .collect()
}

fn iptables_services(file: &str) -> Vec<Service> {
    let text = data(file);
    let p = parse::iptables::parse_iptables(file, &text);
    let lines: Vec<&str> = text.lines().collect();
    let excerpt = |l: usize| Excerpt::from(lines.get(l - 1).copied().unwrap_or_default());
    iptables::services(&p.model, file, Proxier::IptablesNft, &excerpt)
}

#[test]
fn kube_proxy_restore_input() {
    let svcs = iptables_services("kube-proxy-restore.txt");
    let m = by_name(&svcs);
    let web = m["ns1/web:http"];
    assert_eq!(
        endpoints(web),
        ["10.244.1.5:8080", "10.244.1.6:8080", "10.244.1.7:8080"]
    );
    let shares: Vec<f64> = web
        .endpoints
        .iter()
        .map(|e| e.share.unwrap_or(0.0))
        .collect();
    for s in shares {
        assert!((s - 1.0 / 3.0).abs() < 1e-6, "{s}");
    }
    assert_eq!(web.affinity_seconds, Some(10800));
    assert!(web
        .frontends
        .iter()
        .any(|f| f.kind == FrontendKind::NodePort && f.port == 30080));
    assert_eq!(web.kind(), FrontendKind::NodePort);
    assert!(web.defects.is_empty(), "{:?}", web.defects);
    // Evidence points at the DNAT line itself.
    assert!(web.endpoints[0]
        .evidence
        .excerpt
        .contains("--to-destination 10.244.1.5:8080"));
    let dns = m["kube-system/kube-dns:dns"];
    assert_eq!(dns.protocol, Protocol::Udp);
    assert_eq!(endpoints(dns), ["10.244.0.2:53", "10.244.0.3:53"]);
    let empty = m["ns1/empty:http"];
    assert!(empty.endpoints.is_empty());
    assert_eq!(
        empty.no_endpoints.len(),
        2,
        "ClusterIP REJECT and NodePort REJECT"
    );
    let local = m["ns2/local:http"];
    assert!(local.external_local);
    assert_eq!(local.kind(), FrontendKind::LoadBalancer);
    assert_eq!(local.no_local_endpoints.len(), 1);
}

#[test]
fn save_output_of_both_backends() {
    for file in ["iptables-nft-save.txt", "iptables-legacy-save.txt"] {
        let svcs = iptables_services(file);
        let m = by_name(&svcs);
        assert!(m.contains_key("ns1/web:http"), "{file}: {:?}", m.keys());
        assert_eq!(endpoints(m["ns1/web:http"]).len(), 3, "{file}");
        assert!(
            svcs.iter().all(|s| s.defects.is_empty()),
            "{file}: {:?}",
            svcs.iter().map(|s| &s.defects).collect::<Vec<_>>()
        );
    }
}

fn nft_services(file: &str) -> Vec<Service> {
    let p = parse::nft::parse_nft(file, &data(file));
    assert!(
        p.coverage.unrecognised.is_empty(),
        "{:?}",
        p.coverage.unrecognised
    );
    nft::services(&p.model, file)
}

#[test]
fn nftables_vmap_form() {
    let svcs = nft_services("nft-kube-proxy-vmap.json");
    let m = by_name(&svcs);
    let web = m["ns1/web:http"];
    assert_eq!(
        endpoints(web),
        ["10.244.1.5:8080", "10.244.1.6:8080", "10.244.1.7:8080"]
    );
    assert!(web
        .frontends
        .iter()
        .any(|f| f.kind == FrontendKind::ClusterIp && f.port == 80));
    assert!(web
        .frontends
        .iter()
        .any(|f| f.kind == FrontendKind::NodePort && f.port == 30080));
    assert_eq!(web.affinity_seconds, Some(10800));
    assert_eq!(
        endpoints(m["kube-system/kube-dns:dns"]),
        ["10.244.0.2:53", "10.244.0.3:53"]
    );
    let empty = m["ns1/empty:http"];
    assert!(empty.endpoints.is_empty() && !empty.no_endpoints.is_empty());
    assert!(svcs
        .iter()
        .all(|s| s.proxier == Proxier::Nftables && s.defects.is_empty()));
}

#[test]
fn nftables_direct_dnat_form() {
    let svcs = nft_services("nft-kube-proxy-direct.json");
    let m = by_name(&svcs);
    let web = m["ns1/web:http"];
    assert_eq!(
        endpoints(web),
        ["10.244.1.5:8080", "10.244.1.6:8080", "10.244.1.7:8080"]
    );
    assert!((web.endpoints[0].share.unwrap_or(0.0) - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        endpoints(m["kube-system/kube-dns:dns"]),
        ["10.244.0.2:53", "10.244.0.3:53"]
    );
    assert!(m["ns1/empty:http"].endpoints.is_empty());
}

#[test]
fn unreachable_and_missing_endpoint_rules_are_defects() {
    let text = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]\n\
-A KUBE-SERVICES -d 10.96.0.5/32 -p tcp -m comment --comment \"ns/x:p cluster IP\" -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA\n\
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment \"ns/x:p -> 10.244.1.5:80\" -j KUBE-SEP-BBBBBBBBBBBBBBBB\n\
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment \"ns/x:p -> 10.244.1.6:80\" -j KUBE-SEP-CCCCCCCCCCCCCCCC\n\
-A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -m tcp -j DNAT --to-destination 10.244.1.5:80\nCOMMIT\n";
    let p = parse::iptables::parse_iptables("x", text);
    let svcs = iptables::services(&p.model, "x", Proxier::IptablesNft, &|_| Excerpt::default());
    let what: Vec<&str> = svcs[0].defects.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(what.len(), 2, "{what:?}");
    assert!(what[0].contains("never reached"), "{what:?}");
    assert!(
        what[1].contains("KUBE-SEP-CCCCCCCCCCCCCCCC, which does not exist"),
        "{what:?}"
    );
}
