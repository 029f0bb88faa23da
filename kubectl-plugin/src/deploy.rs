//! `kubectl netsnap deploy|undeploy`: the manifest of deploy/netsnap.yaml, built into
//! the binary, applied or deleted through `kubectl … -f -`.

use crate::kubectl::Kubectl;
use crate::NAMESPACE;
use anyhow::{bail, Result};

/// deploy/netsnap.yaml.
pub const MANIFEST: &str = include_str!("../../deploy/netsnap.yaml");

/// The image the manifest names; `deploy --image` replaces it.
pub const DEFAULT_IMAGE: &str = "netsnap-collect:0.1.0";

/// The manifest with `image` in place of the default image.
pub fn manifest_with_image(image: &str) -> Result<String> {
    if image.is_empty()
        || image
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        bail!("--image {image:?}: not an image reference");
    }
    let from = format!("image: {DEFAULT_IMAGE}\n");
    if MANIFEST.matches(&from).count() != 1 {
        bail!("the built-in manifest does not name the image {DEFAULT_IMAGE} exactly once");
    }
    Ok(MANIFEST.replace(&from, &format!("image: {image}\n")))
}

pub fn deploy(k: &Kubectl, image: &str, wait: Option<u64>) -> Result<()> {
    let manifest = manifest_with_image(image)?;
    let out = k.output(&["apply", "-f", "-"], Some(manifest.as_bytes()))?;
    print!("{}", String::from_utf8_lossy(&out));
    if let Some(secs) = wait {
        let t = format!("--timeout={secs}s");
        let out = k.output(
            &[
                "rollout",
                "status",
                "-n",
                NAMESPACE,
                "daemonset/netsnap-collector",
                &t,
            ],
            None,
        )?;
        print!("{}", String::from_utf8_lossy(&out));
    }
    Ok(())
}

pub fn undeploy(k: &Kubectl) -> Result<()> {
    let out = k.output(
        &["delete", "--ignore-not-found", "-f", "-"],
        Some(MANIFEST.as_bytes()),
    )?;
    print!("{}", String::from_utf8_lossy(&out));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{COLLECTOR_CONTAINER, COLLECTOR_PATH, POD_SELECTOR};

    #[test]
    fn the_manifest_matches_what_collect_looks_for() {
        assert!(MANIFEST.contains(&format!("namespace: {NAMESPACE}\n")));
        let (key, value) = POD_SELECTOR.split_once('=').unwrap();
        assert!(MANIFEST.contains(&format!("{key}: {value}\n")));
        assert!(MANIFEST.contains(&format!("- name: {COLLECTOR_CONTAINER}\n")));
        assert!(MANIFEST.contains(&format!("command: [\"{COLLECTOR_PATH}\", \"--idle\"]")));
        assert!(MANIFEST.contains("mountPath: /host\n"));
    }

    #[test]
    fn image_is_replaced_once() {
        let m = manifest_with_image("registry.local/netsnap:1.2").unwrap();
        assert!(m.contains("image: registry.local/netsnap:1.2\n"));
        assert!(!m.contains(DEFAULT_IMAGE));
        assert!(manifest_with_image("a b").is_err());
        assert!(manifest_with_image("").is_err());
    }
}
