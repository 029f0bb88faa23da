//! Which nodes to collect and the DaemonSet pod on each, from `kubectl get nodes` and
//! `kubectl get pods` JSON. The API's answers are input like any other: a node name
//! that is not a DNS subdomain is refused (it becomes a file name).

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// The nodes asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChoice {
    /// `--nodes a,b`: exactly these.
    Named(Vec<String>),
    /// `-l SELECTOR`: the nodes `kubectl get nodes -l` lists.
    Selector(String),
    /// `--all` (the default): every node.
    All,
}

/// One node to collect, with its DaemonSet pod when there is a running one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    /// The running collector pod on the node, or why there is none.
    pub pod: Result<String, String>,
}

/// Node names in a `kubectl get nodes -o json` answer, in its order.
pub fn node_names(list: &Value) -> Result<Vec<String>> {
    items(list, "nodes")?
        .iter()
        .map(|n| {
            n.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .context("kubectl get nodes: an item without metadata.name")
        })
        .collect()
}

/// The running collector pod of each node in a `kubectl get pods -o json` answer
/// (a pod being replaced may share its node with the new one: a running one wins,
/// then the newest).
pub fn pods_by_node(list: &Value) -> Result<BTreeMap<String, String>> {
    // node -> (running, created, pod name)
    let mut best: BTreeMap<String, (bool, String, String)> = BTreeMap::new();
    for p in items(list, "pods")? {
        let (Some(name), Some(node)) = (
            p.pointer("/metadata/name").and_then(Value::as_str),
            p.pointer("/spec/nodeName").and_then(Value::as_str),
        ) else {
            continue; // not scheduled yet
        };
        let running = p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
            && p.pointer("/metadata/deletionTimestamp").is_none();
        let created = p
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let cand = (running, created, name.to_string());
        match best.get(node) {
            Some(b) if (b.0, &b.1) >= (cand.0, &cand.1) => {}
            _ => {
                best.insert(node.to_string(), cand);
            }
        }
    }
    Ok(best
        .into_iter()
        .filter(|(_, (running, _, _))| *running)
        .map(|(node, (_, _, pod))| (node, pod))
        .collect())
}

fn items<'v>(list: &'v Value, what: &str) -> Result<&'v Vec<Value>> {
    list.get("items")
        .and_then(Value::as_array)
        .with_context(|| format!("kubectl get {what}: no `items` list in the answer"))
}

/// The targets: every node chosen, each with its pod or the reason it has none.
pub fn resolve(nodes: &[String], pods: &BTreeMap<String, String>) -> Result<Vec<Target>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for node in nodes {
        if !seen.insert(node.as_str()) {
            continue;
        }
        check_node_name(node)?;
        let pod = pods.get(node).cloned().ok_or_else(|| {
            "no running netsnap-collector pod on this node (kubectl netsnap deploy; kubectl -n netsnap get pods -o wide)".to_string()
        });
        out.push(Target {
            node: node.clone(),
            pod,
        });
    }
    if out.is_empty() {
        bail!("no node to collect");
    }
    Ok(out)
}

/// A node name as Kubernetes allows it (RFC 1123 subdomain), so it is safe as a
/// file name: no `/`, no `..`, no leading dot.
pub fn check_node_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !ok {
        bail!("node name {name:?} is not a Kubernetes node name (RFC 1123 subdomain)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, created: &str) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created},
               "spec": {"nodeName": node}, "status": {"phase": phase}})
    }

    #[test]
    fn running_pod_wins_then_newest() {
        let list = json!({"items": [
            pod("old", "a", "Running", "2026-01-01T00:00:00Z"),
            pod("new", "a", "Running", "2026-01-02T00:00:00Z"),
            pod("pending", "b", "Pending", "2026-01-03T00:00:00Z"),
            pod("run", "c", "Running", "2026-01-01T00:00:00Z"),
            pod("later", "c", "Pending", "2026-01-05T00:00:00Z"),
            {"metadata": {"name": "unscheduled"}, "status": {"phase": "Pending"}},
        ]});
        let m = pods_by_node(&list).unwrap();
        assert_eq!(m.get("a").map(String::as_str), Some("new"));
        assert_eq!(m.get("b"), None);
        assert_eq!(m.get("c").map(String::as_str), Some("run"));
    }

    #[test]
    fn nodes_without_pods_are_targets_with_a_reason() {
        let pods = BTreeMap::from([("a".to_string(), "p".to_string())]);
        let t = resolve(&["a".into(), "b".into(), "a".into()], &pods).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].pod, Ok("p".into()));
        assert!(t[1].pod.as_ref().unwrap_err().contains("no running"));
        assert!(resolve(&[], &pods).is_err());
    }

    #[test]
    fn hostile_node_names_are_refused() {
        for bad in [
            "../etc", "a/b", ".hidden", "", "UPPER", "a..b", "-a", "a\nb",
        ] {
            assert!(check_node_name(bad).is_err(), "{bad:?}");
            assert!(resolve(&[bad.into()], &BTreeMap::new()).is_err());
        }
        for good in ["node-1", "ip-10-0-0-1.eu-west-1.compute.internal", "a"] {
            check_node_name(good).unwrap();
        }
    }

    #[test]
    fn answers_without_items_are_errors() {
        assert!(node_names(&json!({"kind": "Status"})).is_err());
        assert!(pods_by_node(&json!([])).is_err());
        assert!(node_names(&json!({"items": [{"metadata": {}}]})).is_err());
        assert_eq!(
            node_names(&json!({"items": [{"metadata": {"name": "n"}}]})).unwrap(),
            ["n"]
        );
    }
}
