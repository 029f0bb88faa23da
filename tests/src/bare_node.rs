//! A lab-like node with many bare pod netns, for scale tests of the collector: a node
//! netns with a bridge, and `n` pod netns each holding the `eth0` end of a veth whose
//! other end is a port of the bridge. No pod processes, cgroups, services or rules:
//! what costs the collector time per netns is there (netlink dumps, sockets, sysctls),
//! and 1,000 of them build in seconds.
//!
//! It is named like a test lab (`nsl-<prefix>-<hex>`, netns `<name>.node`,
//! `<name>.pod<i>`, directory `/run/netsnap-lab-<name>` with an owner record), so
//! that [`crate::lab::teardown_by_name`] removes it, and so does the stale-lab cleanup
//! of the next lab build if this test process is killed before `Drop` runs.

use crate::lab::{
    self, cleanup_stale, lab_dir, owner_record, teardown_by_name, Footprint, TEST_PREFIX,
};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// One bare pod: its netns and the host end of its veth.
#[derive(Debug, Clone)]
pub struct BarePod {
    pub netns_name: String,
    pub netns_path: PathBuf,
    pub host_veth: String,
}

/// A node netns with `n` bare pod netns. Dropping it tears everything down.
pub struct BareNode {
    name: String,
    node_ns: String,
    pods: Vec<BarePod>,
    torn_down: bool,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    h[..n].to_string()
}

/// Runs `ip [-n netns] -batch -` with `lines` on stdin.
fn ip_batch(netns: Option<&str>, lines: &str) -> Result<()> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("ip -batch")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(lines.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "ip -batch in {netns:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl BareNode {
    /// Builds the node and `n` pods (at most 60,000). Pod `i` has 10.244.0.0/16
    /// address `10.244.(i / 250 + 1).(i % 250 + 2)`, default route via the bridge.
    pub fn build(prefix: &str, n: usize) -> Result<BareNode> {
        if n > 60_000 {
            bail!("at most 60000 pods");
        }
        if let Some(r) = lab::unavailable_reason() {
            bail!("the lab cannot run here: {r}");
        }
        for name in cleanup_stale() {
            eprintln!("lab: removed stale lab {name} left by a dead process");
        }
        let name = format!("{TEST_PREFIX}{prefix}-{}", random_hex(6));
        let dir = lab_dir(&name);
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        std::fs::write(dir.join("owner"), owner_record())?;
        let tag = random_hex(6);
        let pods = (0..n)
            .map(|i| {
                let netns_name = format!("{name}.pod{i}");
                BarePod {
                    netns_path: lab::netns::path(&netns_name),
                    netns_name,
                    host_veth: format!("vb{tag}{i:05}"),
                }
            })
            .collect();
        let mut node = BareNode {
            node_ns: format!("{name}.node"),
            name,
            pods,
            torn_down: false,
        };
        // From here on, an error drops `node`, which tears down what was built.
        node.setup()
            .with_context(|| format!("building bare node {}", node.name))?;
        Ok(node)
    }

    fn setup(&mut self) -> Result<()> {
        // Every `netns add` in one ip process: 1,000 spawns would cost seconds.
        let mut adds = format!("netns add {}\n", self.node_ns);
        for p in &self.pods {
            adds.push_str(&format!("netns add {}\n", p.netns_name));
        }
        ip_batch(None, &adds)?;
        let mut node = String::from(
            "link set lo up\nlink add cni0 type bridge\nlink set cni0 up\n\
             addr add 10.244.0.1/16 dev cni0\n",
        );
        for p in &self.pods {
            let v = &p.host_veth;
            node.push_str(&format!(
                "link add {v} type veth peer name eth0 netns {}\nlink set {v} master cni0\nlink set {v} up\n",
                p.netns_name
            ));
        }
        ip_batch(Some(&self.node_ns), &node)?;
        for (i, p) in self.pods.iter().enumerate() {
            ip_batch(
                Some(&p.netns_name),
                &format!(
                    "link set lo up\naddr add 10.244.{}.{}/16 dev eth0\nlink set eth0 up\n\
                     route add default via 10.244.0.1 dev eth0\n",
                    i / 250 + 1,
                    i % 250 + 2
                ),
            )?;
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn node_netns_name(&self) -> &str {
        &self.node_ns
    }
    pub fn node_netns_path(&self) -> PathBuf {
        lab::netns::path(&self.node_ns)
    }
    pub fn pods(&self) -> &[BarePod] {
        &self.pods
    }
    pub fn dir(&self) -> PathBuf {
        lab_dir(&self.name)
    }

    /// What must be gone after teardown (check with [`crate::lab::assert_no_leaks`]).
    pub fn footprint(&self) -> Footprint {
        let dir = self.dir();
        Footprint {
            lab_name: self.name.clone(),
            netns_prefix: format!("{}.", self.name),
            // No cgroup: a path under the lab dir, which must be gone as well.
            cgroup_root: dir.join("no-cgroup"),
            lab_dir: dir,
            pids: Vec::new(),
            link_names: self.pods.iter().map(|p| p.host_veth.clone()).collect(),
        }
    }

    /// Tears it down now and reports errors (Drop does it too).
    pub fn teardown(mut self) -> Result<()> {
        self.teardown_inner()
    }

    fn teardown_inner(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        // One ip process for all deletions; the lab's teardown then removes anything
        // left (one `ip netns del` each) and the directory.
        let mut dels = String::new();
        for ns in lab::netns::list_with_prefix(&format!("{}.", self.name)) {
            dels.push_str(&format!("netns del {ns}\n"));
        }
        let batch = if dels.is_empty() {
            Ok(())
        } else {
            ip_batch(None, &dels)
        };
        let rest = teardown_by_name(&self.name);
        batch.and(rest)
    }
}

impl Drop for BareNode {
    fn drop(&mut self) {
        if let Err(e) = self.teardown_inner() {
            eprintln!("bare node {}: teardown failed: {e:#}", self.name);
        }
    }
}
