//! Host facts, the node resolver configuration and the one kubelet hands to pods.

use crate::source::{io_reason, Captured};
use crate::sys::procfs::read_small;
use crate::sys::tools::host_path;
use netsnap_schema::model::{HostFacts, KubeProxyHints};
use netsnap_schema::registry::SourceId;
use netsnap_schema::{layout, SourceStatus};
use std::io;
use std::path::{Path, PathBuf};

/// Node hostname (UTS nodename of the collector, which runs with the node's).
pub fn hostname() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).unwrap_or(0)
}

/// `host/facts.json`. `kube_proxy` hints are filled in by the caller from other sources.
pub fn facts(hints: KubeProxyHints) -> HostFacts {
    let (release, version, machine, nodename) = match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.version().to_string_lossy().into_owned(),
            u.machine().to_string_lossy().into_owned(),
            u.nodename().to_string_lossy().into_owned(),
        ),
        Err(_) => Default::default(),
    };
    let uptime = read_small(Path::new("/proc/uptime"))
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|u| u.parse::<f64>().ok())
        })
        .map(|f| f as u64)
        .unwrap_or(0);
    HostFacts {
        hostname: nodename,
        kernel_release: release,
        kernel_version: version,
        machine,
        boot_id: read_small(Path::new("/proc/sys/kernel/random/boot_id")).ok(),
        cpus: online_cpus(),
        memory_bytes: read_small(Path::new("/proc/meminfo"))
            .ok()
            .and_then(|t| meminfo_total(&t))
            .unwrap_or(0),
        uptime_secs: uptime,
        collected_as_root: crate::sys::procfs::is_root(),
        kube_proxy: hints,
    }
}

/// Tables listed in `/proc/thread-self/net/{ip,ip6}_tables_names`: the legacy
/// backend is in use for them. `Ok(None)` when the file does not exist (module not
/// loaded). Reading these files never loads a module.
pub fn legacy_tables(v6: bool) -> io::Result<Option<Vec<String>>> {
    let file = if v6 {
        "ip6_tables_names"
    } else {
        "ip_tables_names"
    };
    match crate::sys::procfs::read_capped(&crate::sys::procfs::thread_net(file), 64 * 1024) {
        Ok(s) => Ok(Some(
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `host/resolv.conf`: the node's `/etc/resolv.conf` under the host root.
pub fn capture_resolv_conf(host_root: &Path) -> Captured {
    let name = SourceId::HostResolvConf.name();
    let p = host_path(host_root, Path::new("/etc/resolv.conf"));
    match crate::sys::procfs::read_capped(&p, 1 << 20) {
        Ok(s) => Captured::bytes(
            name,
            layout::HOST_RESOLV_CONF,
            SourceStatus::Ok,
            s.into_bytes(),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Captured::unavailable(name, format!("{} does not exist", p.display()))
        }
        Err(e) => Captured::failed(name, io_reason(&p.display().to_string(), &e)),
    }
}

/// `resolvConf:` of a kubelet config file (YAML; a line-level read is enough).
pub fn resolv_conf_from_kubelet_config(yaml: &str) -> Option<String> {
    yaml.lines().find_map(|l| {
        let v = l.trim_start().strip_prefix("resolvConf:")?;
        let v = v
            .split(" #")
            .next()
            .unwrap_or(v)
            .trim()
            .trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// `--resolv-conf` and `--config` from a kubelet command line (NUL-separated).
pub fn kubelet_flags(cmdline: &[u8]) -> (Option<String>, Option<String>) {
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut resolv = None;
    let mut config = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        for (flag, slot) in [("--resolv-conf", &mut resolv), ("--config", &mut config)] {
            if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
                *slot = Some(v.to_string());
            } else if a == flag {
                *slot = args.get(i + 1).cloned();
            }
        }
        i += 1;
    }
    (resolv, config)
}

fn kubelet_cmdline() -> Option<Vec<u8>> {
    let rd = std::fs::read_dir("/proc").ok()?;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let comm = read_small(&Path::new("/proc").join(pid).join("comm")).unwrap_or_default();
        if comm == "kubelet" {
            return std::fs::read(Path::new("/proc").join(pid).join("cmdline")).ok();
        }
    }
    None
}

/// `host/kubelet-resolv.conf`: the file kubelet is configured to hand to pods
/// (`--resolv-conf`, or `resolvConf:` in its config file), when it can be found.
pub fn capture_kubelet_resolv_conf(host_root: &Path) -> Captured {
    let name = SourceId::HostKubeletResolvConf.name();
    let (flag_resolv, flag_config) = kubelet_cmdline()
        .map(|c| kubelet_flags(&c))
        .unwrap_or((None, None));
    let mut configs: Vec<PathBuf> = flag_config.into_iter().map(PathBuf::from).collect();
    configs.push(PathBuf::from("/var/lib/kubelet/config.yaml"));
    let mut source = None;
    let resolv = flag_resolv
        .inspect(|_| source = Some("kubelet --resolv-conf".to_string()))
        .or_else(|| {
            configs.iter().find_map(|c| {
                let text =
                    crate::sys::procfs::read_capped(&host_path(host_root, c), 1 << 20).ok()?;
                let r = resolv_conf_from_kubelet_config(&text)?;
                source = Some(format!("resolvConf in {}", c.display()));
                Some(r)
            })
        });
    let Some(resolv) = resolv else {
        return Captured::unavailable(
            name,
            "no kubelet configuration found (no kubelet process, no /var/lib/kubelet/config.yaml)",
        );
    };
    let p = host_path(host_root, Path::new(&resolv));
    let note = format!("{resolv} (from {})", source.unwrap_or_default());
    match crate::sys::procfs::read_capped(&p, 1 << 20) {
        Ok(s) => Captured::bytes(
            name,
            layout::HOST_KUBELET_RESOLV_CONF,
            SourceStatus::Ok,
            s.into_bytes(),
        )
        .with_note(note),
        Err(e) => Captured::failed(name, io_reason(&p.display().to_string(), &e)).with_note(note),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_config_and_flags() {
        let yaml = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nresolvConf: \"/run/systemd/resolve/resolv.conf\" # systemd\n";
        assert_eq!(
            resolv_conf_from_kubelet_config(yaml).as_deref(),
            Some("/run/systemd/resolve/resolv.conf")
        );
        assert_eq!(resolv_conf_from_kubelet_config("kind: X\n"), None);
        let (r, c) = kubelet_flags(
            b"/usr/bin/kubelet\0--config=/etc/k/config.yaml\0--resolv-conf\0/etc/r.conf\0",
        );
        assert_eq!(r.as_deref(), Some("/etc/r.conf"));
        assert_eq!(c.as_deref(), Some("/etc/k/config.yaml"));
    }

    #[test]
    fn kubelet_resolv_from_host_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("var/lib/kubelet")).unwrap();
        std::fs::create_dir_all(t.path().join("etc/k8s")).unwrap();
        std::fs::write(
            t.path().join("var/lib/kubelet/config.yaml"),
            "resolvConf: /etc/k8s/resolv.conf\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/k8s/resolv.conf"),
            "nameserver 192.0.2.53\n",
        )
        .unwrap();
        let c = capture_kubelet_resolv_conf(t.path());
        // A kubelet running on the test machine would take precedence; skip then.
        if kubelet_cmdline().is_none() {
            assert_eq!(c.record.status, SourceStatus::Ok);
            assert!(c.record.note.unwrap().contains("/etc/k8s/resolv.conf"));
        }
    }

    #[test]
    fn meminfo() {
        assert_eq!(
            meminfo_total("MemTotal:       24684000 kB\nMemFree: 1 kB\n"),
            Some(24684000 * 1024)
        );
    }
}
