//! The integration tests of this crate, one module per concern, in one test binary
//! (one link step instead of one per file; ripgrep keeps its tests the same way).

mod analyze_lab;
mod code_shape;
mod collect_backends;
mod collect_faults;
mod collect_faults_more;
mod collect_idle;
mod collect_lab;
mod collect_memory;
mod deploy_manifest;
mod findings_baseline;
mod fuzz_regressions;
mod hostile;
mod hostile_import;
mod import_listings;
mod import_loose;
mod import_nft_text;
mod import_tools;
mod kubectl_plugin;
mod lab_basic;
mod lab_cluster;
mod lab_cni;
mod lab_diff;
mod lab_dual_stack;
mod lab_faults;
mod lab_flannel;
mod lab_ipvs;
mod lab_rootns;
mod lab_samples;
mod report_browser;
mod report_html;
mod static_aarch64;
mod trace_lab;
mod trace_route;
mod trace_sysctl_gap;
