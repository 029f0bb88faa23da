//! Which pod a netns belongs to, from what a node has offline.
//!
//! Sources, tried in this order (the first that answers wins; every one tried is
//! recorded in `tried`):
//! 1. `cgroup+pod-logs`: the pod UID from a process's cgroup path (`…pod<uid>…`,
//!    with `-` or `_` as the systemd driver writes it), and namespace/name from the
//!    kubelet log directory `/var/log/pods/<namespace>_<name>_<uid>` under the host root;
//! 2. `crictl`: `crictl pods -o json` + `crictl inspectp -o json`, matched by the
//!    sandbox netns path or pid; only run when crictl exists under the host root and
//!    some netns still lacks an identity (it talks to the runtime and may be slow);
//! 3. `cgroup`: the UID alone;
//! 4. `hostname`: the UTS hostname (kubelet sets it to the pod name) when it differs
//!    from the node's.

use crate::deadline::{budgets, Deadline};
use crate::sys::tools::host_path;
use crate::sys::Sys;
use netsnap_schema::model::{PodIdentity, PodIdentitySource};
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The pod UID in a `/proc/<pid>/cgroup` text, normalised to dashes.
pub fn uid_from_cgroup(text: &str) -> Option<String> {
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or(line);
        let mut rest = path;
        while let Some(i) = rest.find("pod") {
            let after = &rest[i + 3..];
            let cand: String = after
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '-' || *c == '_')
                .collect();
            let norm = cand.replace('_', "-");
            if is_pod_uid(&norm) {
                return Some(norm.to_ascii_lowercase());
            }
            rest = after;
        }
    }
    None
}

/// A UUID (API pods) or 32 hex digits (static pods' hashed UID).
fn is_pod_uid(s: &str) -> bool {
    let hex = |p: &str| p.chars().all(|c| c.is_ascii_hexdigit());
    if s.len() == 32 {
        return hex(s);
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && hex(p))
}

/// The first pod UID found in the cgroups of `pids`.
pub fn uid_of_pids(proc_root: &Path, pids: &[u32]) -> Option<String> {
    pids.iter().take(16).find_map(|pid| {
        let text =
            crate::sys::procfs::read_small(&proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        uid_from_cgroup(&text)
    })
}

/// `/var/log/pods/<namespace>_<name>_<uid>` directories: uid → (namespace, name).
#[derive(Debug, Default, Clone)]
pub struct PodLogs {
    by_uid: HashMap<String, (String, String)>,
}

impl PodLogs {
    pub fn read(host_root: &Path) -> PodLogs {
        let dir = host_path(host_root, Path::new("/var/log/pods"));
        let mut logs = PodLogs::default();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if let Some(name) = e.file_name().to_str() {
                    logs.insert_dir_name(name);
                }
            }
        }
        logs
    }

    /// Namespaces and pod names cannot contain `_`, so the split is unambiguous.
    pub fn insert_dir_name(&mut self, dir: &str) {
        let Some((ns, rest)) = dir.split_once('_') else {
            return;
        };
        let Some((name, uid)) = rest.rsplit_once('_') else {
            return;
        };
        if ns.is_empty() || name.is_empty() || !is_pod_uid(uid) {
            return;
        }
        self.by_uid
            .insert(uid.to_ascii_lowercase(), (ns.to_string(), name.to_string()));
    }

    pub fn get(&self, uid: &str) -> Option<&(String, String)> {
        self.by_uid.get(uid)
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

/// A pod sandbox as crictl reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrictlPod {
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub pid: Option<u32>,
    pub netns_path: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Crictl {
    /// Not installed under the host root, or not needed.
    NotRun(String),
    Failed(String),
    Pods(Vec<CrictlPod>),
}

/// `crictl pods -o json`: `{"items":[{"id", "metadata":{name,uid,namespace}, "state"}]}`.
pub fn parse_crictl_pods(json: &[u8]) -> Result<Vec<CrictlPod>, String> {
    let v: Value = serde_json::from_slice(json).map_err(|e| format!("crictl pods: {e}"))?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(items
        .iter()
        .filter(|i| i.get("state").and_then(Value::as_str) != Some("SANDBOX_NOTREADY"))
        .filter_map(|i| {
            let md = i.get("metadata")?;
            let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            Some(CrictlPod {
                id: s(i, "id")?,
                namespace: s(md, "namespace")?,
                name: s(md, "name")?,
                uid: s(md, "uid")?,
                pid: None,
                netns_path: None,
            })
        })
        .collect())
}

/// `crictl inspectp -o json <id>…`: one JSON document per sandbox (or an array).
/// Fills in the sandbox pid and netns path.
pub fn apply_crictl_inspect(pods: &mut [CrictlPod], json: &[u8]) {
    let mut docs = Vec::new();
    for v in serde_json::Deserializer::from_slice(json).into_iter::<Value>() {
        match v {
            Ok(Value::Array(a)) => docs.extend(a),
            Ok(v) => docs.push(v),
            Err(_) => break,
        }
    }
    for d in docs {
        let Some(id) = d.pointer("/status/id").and_then(Value::as_str) else {
            continue;
        };
        let Some(pod) = pods.iter_mut().find(|p| p.id == id) else {
            continue;
        };
        pod.pid = d
            .pointer("/info/pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0);
        pod.netns_path = d
            .pointer("/info/runtimeSpec/linux/namespaces")
            .and_then(Value::as_array)
            .and_then(|ns| {
                ns.iter().find_map(|n| {
                    (n.get("type").and_then(Value::as_str) == Some("network"))
                        .then(|| n.get("path").and_then(Value::as_str).map(str::to_string))
                        .flatten()
                })
            });
    }
}

/// Runs crictl (from the host root) and returns the ready sandboxes.
pub fn run_crictl(sys: &dyn Sys, deadline: &Deadline) -> Crictl {
    let tool = match sys.find_tool("crictl") {
        Ok(t) => t,
        Err(e) => return Crictl::NotRun(e.to_string()),
    };
    let run = |args: &[&str]| -> Result<Vec<u8>, String> {
        let (out, stdout) = sys
            .run_tool_capture(&tool, args, deadline.budget(budgets::CRICTL))
            .map_err(|e| e.reason())?;
        crate::sys::tools::check_status(&tool, &out).map_err(|e| e.reason())?;
        Ok(stdout)
    };
    let mut pods = match run(&["pods", "-o", "json"]).and_then(|j| parse_crictl_pods(&j)) {
        Ok(p) => p,
        Err(e) => return Crictl::Failed(e),
    };
    let ids: Vec<String> = pods.iter().map(|p| p.id.clone()).collect();
    for chunk in ids.chunks(64) {
        let mut args = vec!["inspectp", "-o", "json"];
        args.extend(chunk.iter().map(String::as_str));
        match run(&args) {
            Ok(json) => apply_crictl_inspect(&mut pods, &json),
            Err(e) => return Crictl::Failed(format!("crictl inspectp: {e}")),
        }
    }
    Crictl::Pods(pods)
}

/// What is known about one netns when its identity is resolved.
pub struct NetnsFacts<'a> {
    pub dev: u64,
    pub ino: u64,
    pub pids: &'a [u32],
    pub cgroup_uid: Option<&'a str>,
    pub hostname: Option<&'a str>,
}

/// Applies the sources in order; `None` when nothing identifies a pod.
pub fn resolve(
    facts: &NetnsFacts,
    logs: &PodLogs,
    crictl: &Crictl,
    host_root: &Path,
    node_hostname: &str,
) -> Option<PodIdentity> {
    let mut tried = Vec::new();
    let ident =
        |ns: Option<&str>, name: Option<&str>, uid: Option<&str>, source, tried: &Vec<_>| {
            Some(PodIdentity {
                namespace: ns.map(str::to_string),
                name: name.map(str::to_string),
                uid: uid.map(str::to_string),
                source,
                tried: Vec::clone(tried),
            })
        };

    tried.push(PodIdentitySource::CgroupAndPodLogs);
    if let Some(uid) = facts.cgroup_uid {
        if let Some((ns, name)) = logs.get(uid) {
            return ident(
                Some(ns),
                Some(name),
                Some(uid),
                PodIdentitySource::CgroupAndPodLogs,
                &tried,
            );
        }
    }

    if let Crictl::Pods(pods) = crictl {
        tried.push(PodIdentitySource::Crictl);
        let matches = |p: &CrictlPod| {
            let by_path = p.netns_path.as_ref().is_some_and(|path| {
                std::fs::metadata(host_path(host_root, Path::new(path)))
                    .map(|m| (m.dev(), m.ino()) == (facts.dev, facts.ino))
                    .unwrap_or(false)
            });
            let by_pid = p.pid.is_some_and(|pid| {
                facts.pids.contains(&pid)
                    || std::fs::metadata(format!("/proc/{pid}/ns/net"))
                        .map(|m| (m.dev(), m.ino()) == (facts.dev, facts.ino))
                        .unwrap_or(false)
            });
            let by_uid = facts.cgroup_uid.is_some_and(|u| u == p.uid);
            by_path || by_pid || by_uid
        };
        if let Some(p) = pods.iter().find(|p| matches(p)) {
            return ident(
                Some(&p.namespace),
                Some(&p.name),
                Some(&p.uid),
                PodIdentitySource::Crictl,
                &tried,
            );
        }
    }

    tried.push(PodIdentitySource::Cgroup);
    if let Some(uid) = facts.cgroup_uid {
        return ident(None, None, Some(uid), PodIdentitySource::Cgroup, &tried);
    }

    tried.push(PodIdentitySource::Hostname);
    if let Some(h) = facts
        .hostname
        .filter(|h| !h.is_empty() && *h != node_hostname)
    {
        return ident(None, Some(h), None, PodIdentitySource::Hostname, &tried);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const UID: &str = "3d5e0a0e-1b2c-4d3e-8f90-0123456789ab";

    #[test]
    fn uid_from_systemd_and_cgroupfs_paths() {
        let systemd = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3d5e0a0e_1b2c_4d3e_8f90_0123456789ab.slice/cri-containerd-abc.scope\n";
        assert_eq!(uid_from_cgroup(systemd).as_deref(), Some(UID));
        let cgroupfs =
            "12:pids:/kubepods/burstable/pod3d5e0a0e-1b2c-4d3e-8f90-0123456789ab/0123abcd\n0::/\n";
        assert_eq!(uid_from_cgroup(cgroupfs).as_deref(), Some(UID));
        let static_pod = "0::/kubepods/podE3B0C44298FC1C149AFBF4C8996FB924/x";
        assert_eq!(
            uid_from_cgroup(static_pod).as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb924")
        );
        assert_eq!(
            uid_from_cgroup("0::/user.slice/user-0.slice/session-1.scope"),
            None
        );
        assert_eq!(
            uid_from_cgroup("0::/kubepods.slice/kubepods-podnotauid.slice"),
            None
        );
    }

    fn fake_host_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let pods = t.path().join("var/log/pods");
        fs::create_dir_all(pods.join(format!("default_web-0_{UID}"))).unwrap();
        fs::create_dir_all(
            pods.join("kube-system_coredns-5d78c9869d-abcde_0a0a0a0a-0000-4000-8000-000000000001"),
        )
        .unwrap();
        fs::create_dir_all(pods.join("garbage")).unwrap();
        t
    }

    fn facts<'a>(uid: Option<&'a str>, hostname: Option<&'a str>) -> NetnsFacts<'a> {
        NetnsFacts {
            dev: 1,
            ino: 2,
            pids: &[],
            cgroup_uid: uid,
            hostname,
        }
    }

    #[test]
    fn pod_logs_give_namespace_and_name() {
        let root = fake_host_root();
        let logs = PodLogs::read(root.path());
        assert_eq!(logs.len(), 2);
        let id = resolve(
            &facts(Some(UID), Some("web-0")),
            &logs,
            &Crictl::NotRun(String::new()),
            root.path(),
            "node",
        )
        .unwrap();
        assert_eq!(id.namespace.as_deref(), Some("default"));
        assert_eq!(id.name.as_deref(), Some("web-0"));
        assert_eq!(id.uid.as_deref(), Some(UID));
        assert_eq!(id.source, PodIdentitySource::CgroupAndPodLogs);
        assert_eq!(id.tried, vec![PodIdentitySource::CgroupAndPodLogs]);
    }

    #[test]
    fn falls_back_in_order() {
        let root = tempfile::tempdir().unwrap();
        let logs = PodLogs::read(root.path());
        let none = Crictl::NotRun(String::new());
        let id = resolve(&facts(Some(UID), None), &logs, &none, root.path(), "node").unwrap();
        assert_eq!(id.source, PodIdentitySource::Cgroup);
        assert_eq!((id.namespace, id.uid.as_deref()), (None, Some(UID)));
        let id = resolve(
            &facts(None, Some("web-1")),
            &logs,
            &none,
            root.path(),
            "node",
        )
        .unwrap();
        assert_eq!(id.source, PodIdentitySource::Hostname);
        assert_eq!(id.name.as_deref(), Some("web-1"));
        assert_eq!(
            id.tried,
            vec![
                PodIdentitySource::CgroupAndPodLogs,
                PodIdentitySource::Cgroup,
                PodIdentitySource::Hostname
            ]
        );
        // The node's own hostname identifies nothing.
        assert!(resolve(
            &facts(None, Some("node")),
            &logs,
            &none,
            root.path(),
            "node"
        )
        .is_none());
    }

    #[test]
    fn crictl_matches_by_netns_path() {
        let pods_json = br#"{"items":[
            {"id":"aaa","metadata":{"name":"web-2","uid":"u-2","namespace":"shop","attempt":0},"state":"SANDBOX_READY"},
            {"id":"bbb","metadata":{"name":"old","uid":"u-3","namespace":"shop"},"state":"SANDBOX_NOTREADY"}]}"#;
        let mut pods = parse_crictl_pods(pods_json).unwrap();
        assert_eq!(pods.len(), 1);
        let inspect = br#"{"status":{"id":"aaa"},"info":{"pid":0,"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/self/ns/net"}]}}}}"#;
        apply_crictl_inspect(&mut pods, inspect);
        assert_eq!(pods[0].netns_path.as_deref(), Some("/proc/self/ns/net"));
        assert_eq!(pods[0].pid, None);
        let me = fs::metadata("/proc/self/ns/net").unwrap();
        let f = NetnsFacts {
            dev: me.dev(),
            ino: me.ino(),
            pids: &[],
            cgroup_uid: None,
            hostname: None,
        };
        let id = resolve(
            &f,
            &PodLogs::default(),
            &Crictl::Pods(pods),
            Path::new("/"),
            "node",
        )
        .unwrap();
        assert_eq!(id.source, PodIdentitySource::Crictl);
        assert_eq!(
            (id.namespace.as_deref(), id.name.as_deref()),
            (Some("shop"), Some("web-2"))
        );
        assert_eq!(
            id.tried,
            vec![
                PodIdentitySource::CgroupAndPodLogs,
                PodIdentitySource::Crictl
            ]
        );
    }

    #[test]
    fn crictl_inspect_accepts_arrays_and_streams() {
        let mut pods = vec![
            CrictlPod {
                id: "a".into(),
                namespace: "n".into(),
                name: "x".into(),
                uid: "u".into(),
                pid: None,
                netns_path: None,
            },
            CrictlPod {
                id: "b".into(),
                namespace: "n".into(),
                name: "y".into(),
                uid: "v".into(),
                pid: None,
                netns_path: None,
            },
        ];
        apply_crictl_inspect(
            &mut pods,
            br#"{"status":{"id":"a"},"info":{"pid":42}}
{"status":{"id":"b"},"info":{"pid":43}}"#,
        );
        assert_eq!((pods[0].pid, pods[1].pid), (Some(42), Some(43)));
        apply_crictl_inspect(&mut pods, br#"[{"status":{"id":"a"},"info":{"pid":44}}]"#);
        assert_eq!(pods[0].pid, Some(44));
    }

    #[test]
    fn fake_crictl_on_host_root() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("usr/bin");
        fs::create_dir_all(&bin).unwrap();
        let script = r#"#!/bin/sh
case "$1" in
pods) echo '{"items":[{"id":"s1","metadata":{"name":"p","uid":"u1","namespace":"ns"},"state":"SANDBOX_READY"}]}' ;;
inspectp) echo '{"status":{"id":"s1"},"info":{"pid":7}}' ;;
esac
"#;
        fs::write(bin.join("crictl"), script).unwrap();
        fs::set_permissions(bin.join("crictl"), fs::Permissions::from_mode(0o755)).unwrap();
        let d = Deadline::new(std::time::Duration::from_secs(10));
        match run_crictl(&crate::sys::RealSys::new(root.path().into()), &d) {
            Crictl::Pods(p) => assert_eq!((p[0].name.as_str(), p[0].pid), ("p", Some(7))),
            other => panic!("{other:?}"),
        }
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            run_crictl(&crate::sys::RealSys::new(empty.path().into()), &d),
            Crictl::NotRun(_)
        ));
    }
}
