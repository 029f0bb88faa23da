//! `kubectl-netsnap collect` end to end against a fake `kubectl` on PATH: a script
//! this test writes that answers `get nodes` / `get pods` from JSON files and runs
//! `exec` by starting the real collector on the lab node the pod stands for (three
//! lab nodes of one [`LabCluster`], one with a cluster fault), and stands in for four
//! broken nodes: one whose exec hangs, one whose exec fails, one that sends bytes
//! that are no bundle, and one without a collector pod. Every process the fake
//! starts writes its PID, so the test can check that none survives the plugin.

use netsnap_tests::collect_support::{processes_with, s, wait_for};
use netsnap_tests::collector::{collector_bin, kubectl_plugin_bin, open_bundle, TempDir};
use netsnap_tests::datapath_check as dc;
use netsnap_tests::deploy_support::workspace;
use netsnap_tests::lab::cluster::LabCluster;
use netsnap_tests::lab::{assert_no_leaks, require_lab, CniMode, Lab};
use netsnap_tests::notice;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Seconds a node may take: the hanging node is killed after this.
const TIMEOUT_SECS: u64 = 15;

/// The fake: logs every call, requires `--context fake` first (the pass-through),
/// answers the two `get`s exactly as the plugin asks them, and maps `exec` on a lab
/// pod to the collector with that lab node's `--node-netns` and `--host-root`.
const FAKE_KUBECTL: &str = r#"#!/bin/bash
D='@DIR@'
echo "$*" >> "$D/calls.log"
[ "$1 $2" = "--context fake" ] || { echo "fake kubectl: no --context fake: $*" >&2; exit 97; }
shift 2
case "$*" in
"get nodes -o json") exec cat "$D/nodes.json" ;;
"get nodes -l pool=lab -o json") exec cat "$D/nodes-lab.json" ;;
"get pods -n netsnap -l app.kubernetes.io/name=netsnap-collector -o json") exec cat "$D/pods.json" ;;
"apply -f -") cat > "$D/applied.yaml"; echo "daemonset.apps/netsnap-collector created"; exit 0 ;;
"delete --ignore-not-found -f -") cat > "$D/deleted.yaml"; exit 0 ;;
esac
[ "$1" = exec ] || { echo "fake kubectl: unexpected: $*" >&2; exit 98; }
pod=$4
echo $$ > "$D/pids/$pod.pid"
[ "$2 $3 $5 $6 $7 $8" = "-n netsnap -c collector -- /netsnap-collect" ] || { echo "fake kubectl: bad exec: $*" >&2; exit 98; }
shift 8
case "$pod" in
*-hang) sleep 100000 & echo $! > "$D/pids/$pod.sleep.pid"; wait; exit 0 ;;
*-fail) echo 'error: unable to upgrade connection: container not found ("collector")' >&2; exit 1 ;;
*-garbage) printf 'this is not a bundle'; exit 0 ;;
esac
. "$D/pods/$pod.env"
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = --host-root ]; then args+=(--host-root "$HOST"); shift 2; continue; fi
    args+=("$1"); shift
done
exec '@COLLECTOR@' --node-netns "$NETNS" "${args[@]}"
"#;

/// The fake cluster: lab nodes `worker-1..3`, broken nodes, and the files behind it.
struct FakeCluster {
    dir: TempDir,
}

const BROKEN: [&str; 3] = ["worker-hang", "worker-fail", "worker-garbage"];
const NO_POD: &str = "worker-nopod";

fn pod_of(node: &str) -> String {
    format!("netsnap-collector-{}", node.trim_start_matches("worker-"))
}

impl FakeCluster {
    fn new(labs: &[Lab]) -> FakeCluster {
        let dir = TempDir::new("kubectl").expect("temp dir");
        let d = dir.path();
        for sub in ["bin", "pids", "pods"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let script = FAKE_KUBECTL.replace("@DIR@", &s(d)).replace(
            "@COLLECTOR@",
            &s(&collector_bin().expect("netsnap-collect")),
        );
        let kubectl = d.join("bin/kubectl");
        std::fs::write(&kubectl, script).unwrap();
        std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut nodes: Vec<String> = (1..=labs.len()).map(|k| format!("worker-{k}")).collect();
        for (node, lab) in nodes.iter().zip(labs) {
            let env = format!(
                "NETNS='{}'\nHOST='{}'\n",
                s(&lab.node_netns_path()),
                s(lab.host_root())
            );
            std::fs::write(d.join("pods").join(format!("{}.env", pod_of(node))), env).unwrap();
        }
        nodes.extend(BROKEN.iter().map(|n| n.to_string()));
        let pods: Vec<Value> = nodes
            .iter()
            .map(|n| {
                json!({"metadata": {"name": pod_of(n), "creationTimestamp": "2026-12-01T00:00:00Z"},
                       "spec": {"nodeName": n}, "status": {"phase": "Running"}})
            })
            .collect();
        let lab_nodes: Vec<Value> = ["worker-1", "worker-2"]
            .iter()
            .map(|n| json!({"metadata": {"name": n, "labels": {"pool": "lab"}}}))
            .collect();
        nodes.push(NO_POD.into());
        let nodes: Vec<Value> = nodes
            .iter()
            .map(|n| json!({"metadata": {"name": n}}))
            .collect();
        let list = |items: Vec<Value>| json!({"apiVersion": "v1", "kind": "List", "items": items});
        std::fs::write(d.join("nodes.json"), list(nodes).to_string()).unwrap();
        std::fs::write(d.join("pods.json"), list(pods).to_string()).unwrap();
        std::fs::write(d.join("nodes-lab.json"), list(lab_nodes).to_string()).unwrap();
        FakeCluster { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the plugin with the fake first on PATH (stderr is a pipe: plain lines).
    fn plugin(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            s(&self.path().join("bin")),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(kubectl_plugin_bin().expect("kubectl-netsnap"))
            .arg("--context")
            .arg("fake")
            .args(args)
            .env("PATH", path)
            .output()
            .expect("run kubectl-netsnap")
    }

    /// Every PID the fake wrote, with the file it is in.
    fn pids(&self) -> Vec<(String, u32)> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(self.path().join("pids"))
            .unwrap()
            .flatten()
        {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let pid = text.trim().parse().expect("a pid");
            v.push((e.file_name().to_string_lossy().into_owned(), pid));
        }
        v.sort();
        v
    }
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| {
            !st.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn node_record<'a>(c: &'a Value, node: &str) -> &'a Value {
    c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("{node} not in collection.json: {c:#}"))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Files in `dir` (names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The collection of every node (`--all`), checked file by file and record by record.
fn check_collect_all(fake: &FakeCluster, labs: &[Lab]) -> (Value, String) {
    let out_dir = fake.path().join("out");
    let timeout = TIMEOUT_SECS.to_string();
    let args = [
        "collect",
        "--all",
        "-o",
        &s(&out_dir),
        "--parallel",
        "3",
        "--timeout",
        &timeout,
    ];
    let out = fake.plugin(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let ctx = format!(
        "status {}\nstderr:\n{stderr}\nstdout:\n{stdout}",
        out.status
    );
    // Some nodes failed, the others were collected and analysed.
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let mut expected: Vec<String> = (1..=labs.len())
        .map(|k| format!("worker-{k}.netsnap.tar.zst"))
        .collect();
    expected.extend(["analysis.json".into(), "collection.json".into()]);
    expected.sort();
    assert_eq!(
        listing(&out_dir),
        expected,
        "no partial file, no bundle of a broken node\n{ctx}"
    );
    let c = read_json(&out_dir.join("collection.json"));
    for k in 1..=labs.len() {
        let node = format!("worker-{k}");
        let r = node_record(&c, &node);
        assert_eq!(r["status"], "collected", "{r:#}\n{ctx}");
        let file = out_dir.join(format!("{node}.netsnap.tar.zst"));
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{node}: mode");
        let size = meta.len();
        assert_eq!(r["bytes"].as_u64(), Some(size), "{r:#}");
        let b = open_bundle(&file).expect("a readable bundle");
        assert_eq!(r["hostname"].as_str(), Some(b.manifest.hostname.as_str()));
        assert!(
            b.file("netns/index.json").is_some(),
            "{node}: no netns index"
        );
        assert!(
            stderr.contains(&format!("{node} ")),
            "no progress line for {node}"
        );
    }
    let reason = |n: &str, status: &str| -> String {
        let r = node_record(&c, n);
        assert_eq!(r["status"], status, "{r:#}");
        assert!(r["bundle"].is_null());
        r["reason"].as_str().unwrap_or("").to_string()
    };
    let hang = reason("worker-hang", "timed_out");
    assert!(
        hang.contains(&format!("after {TIMEOUT_SECS}s")) && hang.contains("killed"),
        "{hang}"
    );
    let fail = reason("worker-fail", "failed");
    assert!(fail.contains("container not found"), "{fail}");
    let garbage = reason("worker-garbage", "failed");
    assert!(garbage.contains("not a readable bundle"), "{garbage}");
    let nopod = reason(NO_POD, "no_pod");
    assert!(
        nopod.contains("no running netsnap-collector pod"),
        "{nopod}"
    );
    assert!(
        stderr.contains("timed_out:"),
        "no progress line for the hang:\n{stderr}"
    );
    (c, ctx)
}

/// The cluster analysis: the three lab nodes as one cluster, the injected rp_filter
/// drift reported (CLU006) on node 2, in the text report and in analysis.json.
fn check_analysis(fake: &FakeCluster, c: &Value, ctx: &str) -> usize {
    assert_eq!(c["analysis"]["status"], "ok", "{c:#}");
    let report = read_json(&fake.path().join("out/analysis.json"));
    let cluster = &report["cluster"];
    assert_eq!(
        cluster["nodes"].as_array().map(Vec::len),
        Some(3),
        "{cluster:#}"
    );
    let findings = cluster["findings"].as_array().expect("cluster findings");
    let drift = findings
        .iter()
        .find(|f| f["id"] == "CLU006")
        .unwrap_or_else(|| panic!("no CLU006 in {findings:#?}"));
    let node2 = &cluster["nodes"][1]["name"];
    assert!(
        drift["nodes"].as_array().unwrap().contains(node2),
        "CLU006 not on node 2 ({node2}): {drift:#}"
    );
    assert!(
        ctx.contains("netsnap cluster of 3 nodes") && ctx.contains("CLU006"),
        "{ctx}"
    );
    findings.len()
}

/// No process the fake started is alive, nothing runs from its directory.
fn check_no_process_left(fake: &FakeCluster) -> usize {
    let pids = fake.pids();
    // The three lab nodes' and the three broken nodes' execs, and the hang's sleep.
    assert_eq!(pids.len(), 7, "{pids:?}");
    for (file, pid) in &pids {
        assert!(!alive(*pid), "{file}: process {pid} survived the plugin");
    }
    let left = processes_with(&s(fake.path()));
    assert!(
        left.is_empty(),
        "processes still running from the fake: {left:?}"
    );
    pids.len()
}

/// `-l pool=lab --redact`: the selector's two nodes; file names and records carry
/// pseudonyms, maps beside the bundles.
fn check_redacted(fake: &FakeCluster) {
    let out_dir = fake.path().join("redacted");
    let out = fake.plugin(&[
        "collect",
        "-l",
        "pool=lab",
        "-o",
        &s(&out_dir),
        "--redact",
        "--no-analysis",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let files = listing(&out_dir);
    assert_eq!(files.len(), 5, "{files:?}");
    assert!(files.iter().all(|f| !f.contains("worker")), "{files:?}");
    let c = read_json(&out_dir.join("collection.json"));
    assert_eq!(c["selection"], "-l pool=lab");
    assert_eq!(c["nodes"].as_array().map(Vec::len), Some(2), "{c:#}");
    let text = c.to_string();
    assert!(
        !text.contains("worker-1") && !text.contains("worker-2"),
        "{text}"
    );
    for r in c["nodes"].as_array().unwrap() {
        let bundle = out_dir.join(r["bundle"].as_str().unwrap());
        let b = open_bundle(&bundle).expect("redacted bundle");
        assert!(b.manifest.options.contains_key("redacted"));
        assert!(out_dir
            .join(format!("{}.map.json", r["bundle"].as_str().unwrap()))
            .is_file());
    }
}

/// `deploy --image` applies the built-in manifest with that image, `undeploy` deletes
/// the same objects, both through `kubectl … -f -`.
fn check_deploy(fake: &FakeCluster) {
    let manifest = std::fs::read_to_string(workspace().join("deploy/netsnap.yaml")).unwrap();
    let out = fake.plugin(&["deploy", "--image", "registry.example/netsnap:9"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let applied = std::fs::read_to_string(fake.path().join("applied.yaml")).unwrap();
    assert_eq!(
        applied,
        manifest.replace(
            "image: netsnap-collect:0.1.0\n",
            "image: registry.example/netsnap:9\n"
        )
    );
    assert_ne!(applied, manifest);
    let out = fake.plugin(&["undeploy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deleted = std::fs::read_to_string(fake.path().join("deleted.yaml")).unwrap();
    assert_eq!(deleted, manifest);
}

/// SIGTERM to the plugin while a node hangs: it kills that kubectl's whole group,
/// removes the partial file and exits 130.
fn check_interrupt(fake: &FakeCluster) {
    let pids = fake.path().join("pids");
    let (exec_pid, sleep_pid) = (
        pids.join("netsnap-collector-hang.pid"),
        pids.join("netsnap-collector-hang.sleep.pid"),
    );
    let _ = std::fs::remove_file(&exec_pid);
    let _ = std::fs::remove_file(&sleep_pid);
    let out_dir = fake.path().join("interrupted");
    let path = format!(
        "{}:{}",
        s(&fake.path().join("bin")),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(kubectl_plugin_bin().unwrap())
        .args([
            "--context",
            "fake",
            "collect",
            "--nodes",
            "worker-hang",
            "--timeout",
            "600",
            "-o",
        ])
        .arg(&out_dir)
        .env("PATH", path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = wait_for(Duration::from_secs(30), "the hanging exec", || {
        std::fs::read_to_string(&sleep_pid)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    // SAFETY: kill(2) on the plugin this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    waited.expect("the fake's hang never started");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [&exec_pid, &sleep_pid] {
        let pid: u32 = std::fs::read_to_string(f).unwrap().trim().parse().unwrap();
        assert!(
            !alive(pid),
            "{}: {pid} survived the interrupted plugin",
            f.display()
        );
    }
    assert_eq!(listing(&out_dir), Vec::<String>::new(), "partial file left");
}

#[test]
fn kubectl_plugin_collects_a_cluster_through_a_fake_kubectl() {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Flannel) {
        return;
    }
    let base = Lab::builder("kplug")
        .pods(2)
        .services(2)
        .endpoints_per_service(1)
        .traffic(false);
    let mut cluster = LabCluster::build(base, 3).expect("build the cluster");
    let fps = cluster.footprints();
    cluster
        .fault_settings_drift(1)
        .expect("rp_filter drift on node 2");
    let fake = FakeCluster::new(&cluster.nodes);
    let (c, ctx) = check_collect_all(&fake, &cluster.nodes);
    let cluster_findings = check_analysis(&fake, &c, &ctx);
    let pids = check_no_process_left(&fake);
    check_redacted(&fake);
    check_deploy(&fake);
    check_interrupt(&fake);
    let left = processes_with(&s(fake.path()));
    assert!(
        left.is_empty(),
        "processes still running from the fake: {left:?}"
    );
    let calls = std::fs::read_to_string(fake.path().join("calls.log")).unwrap();
    assert!(
        calls.lines().all(|l| l.starts_with("--context fake ")),
        "{calls}"
    );
    cluster.teardown().expect("teardown");
    for fp in &fps {
        assert_no_leaks(fp);
    }
    let took: Vec<String> = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{} {} {} B {} ms",
                n["node"].as_str().unwrap_or("?"),
                n["status"].as_str().unwrap_or("?"),
                n["bytes"],
                n["duration_ms"]
            )
        })
        .collect();
    notice(&format!(
        "kubectl_plugin: 7 nodes through a fake kubectl (--parallel 3, --timeout {TIMEOUT_SECS}): {}; \
         run took {} ms; cluster analysis of the 3 bundles: {cluster_findings} cluster finding(s), CLU006 on node 2; \
         {pids} fake PIDs all dead; -l pool=lab --redact run: 2 bundles with pseudonymous names; deploy/undeploy piped the built-in manifest; SIGTERM during a hang: exit 130, its exec and sleep dead, no partial file",
        took.join(", "),
        c["duration_ms"]
    ));
}
