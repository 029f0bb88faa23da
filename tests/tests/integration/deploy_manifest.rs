//! deploy/netsnap.yaml against the Kubernetes OpenAPI schema (`kubernetes-validate
//! --strict`, from PyPI, installed by scripts/test): the manifest passes, and copies
//! broken three ways (an unknown field, a wrong type, a missing required field) fail,
//! so the validator is shown to look. Then what the issue asks of the DaemonSet,
//! read from the manifest as data.

use netsnap_tests::collector::TempDir;
use netsnap_tests::deploy_support::{require_tool, workspace};
use netsnap_tests::notice;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const VALIDATOR: &str = "kubernetes-validate";
const INSTALL: &str = "pip install kubernetes-validate";

fn validate(path: &Path) -> (bool, String) {
    let out = Command::new(VALIDATOR)
        .args(["--strict", "--quiet"])
        .arg(path)
        .output()
        .expect("run kubernetes-validate");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The manifest's documents as JSON (PyYAML comes with kubernetes-validate).
fn documents(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn manifest_validates_and_broken_copies_do_not() {
    if !require_tool(VALIDATOR, INSTALL) {
        return;
    }
    let manifest = workspace().join("deploy/netsnap.yaml");
    let (ok, text) = validate(&manifest);
    assert!(ok, "deploy/netsnap.yaml does not validate:\n{text}");
    let original = std::fs::read_to_string(&manifest).unwrap();
    let dir = TempDir::new("manifest").unwrap();
    let mutations = [
        ("hostNetwork: true", "hostNetwrok: true", "hostNetwrok"),
        ("privileged: true", "privileged: \"yes\"", "boolean"),
        (
            "- name: collector",
            "- nmae: collector",
            "'name' is a required property",
        ),
    ];
    for (i, (from, to, expect)) in mutations.iter().enumerate() {
        assert_eq!(original.matches(from).count(), 1, "{from}");
        let p = dir.path().join(format!("broken-{i}.yaml"));
        std::fs::write(&p, original.replace(from, to)).unwrap();
        let (ok, text) = validate(&p);
        assert!(!ok, "{to:?} passed the validator:\n{text}");
        assert!(text.contains(expect), "{to:?}: {text}");
    }
    notice(&format!(
        "deploy_manifest: {} valid (Namespace, ServiceAccount, DaemonSet, strict); {} broken copies rejected",
        manifest.display(),
        mutations.len()
    ));
}

#[test]
fn daemonset_has_what_a_node_capture_needs() {
    if !require_tool(VALIDATOR, INSTALL) {
        return;
    }
    let docs = documents(&workspace().join("deploy/netsnap.yaml"));
    let kinds: Vec<&str> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["Namespace", "ServiceAccount", "DaemonSet"]);
    let ns = docs[0]["metadata"]["name"].as_str().unwrap();
    assert_eq!(docs[1]["metadata"]["namespace"], ns);
    assert_eq!(docs[2]["metadata"]["namespace"], ns);
    let pod = &docs[2]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], docs[1]["metadata"]["name"]);
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true);
    // One toleration that matches every taint.
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{"operator": "Exists"}])
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(
        c["command"],
        serde_json::json!(["/netsnap-collect", "--idle"])
    );
    assert_eq!(c["resources"]["requests"]["cpu"], "10m");
    assert_eq!(c["resources"]["requests"]["memory"], "32Mi");
    let host_mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/host")
        .expect("/host mounted");
    assert_eq!(host_mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == host_mount["name"])
        .expect("the /host volume");
    assert_eq!(volume["hostPath"]["path"], "/");
    // `-o -` spools under TMPDIR: the image (FROM scratch) has no /tmp of its own.
    assert!(c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/tmp"));
}
