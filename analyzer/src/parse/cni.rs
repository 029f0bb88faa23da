//! CNI configuration files (`/etc/cni/net.d`, bundle `host/cni/<file name>`): a single
//! plugin (`.conf`, `.json`) or a plugin list (`.conflist`, `plugins: [...]`).
//!
//! The fields the checks and `netsnap show cni` need are typed (network name,
//! cniVersion, each plugin's type, bridge, MTU, hairpin, masquerade, gateway, IPAM and
//! flannel's `delegate`); every other field is kept as it was in `extra`, so nothing a
//! CNI vendor adds is lost. Invalid JSON, or a known field of the wrong type, is an
//! unrecognised line with its line number.

use super::coverage::{Coverage, Parsed};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Extensions libcni reads (`libcni.ConfFiles`); anything else in the directory is
/// ignored by the runtime.
pub const CONFIG_EXTENSIONS: [&str; 3] = [".conf", ".conflist", ".json"];

/// What kind of file the runtime takes a file for, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CniFileKind {
    /// `.conf` / `.json`: one plugin.
    Conf,
    /// `.conflist`: `plugins: [...]`.
    Conflist,
    /// Not a CNI configuration extension: the runtime ignores it.
    Ignored,
}

impl CniFileKind {
    pub fn of(file_name: &str) -> CniFileKind {
        if file_name.ends_with(".conflist") {
            CniFileKind::Conflist
        } else if file_name.ends_with(".conf") || file_name.ends_with(".json") {
            CniFileKind::Conf
        } else {
            CniFileKind::Ignored
        }
    }
}

/// One file of the CNI configuration directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CniFile {
    /// Bundle path (`host/cni/10-flannel.conflist`).
    pub path: String,
    /// File name in `/etc/cni/net.d`.
    pub file: String,
    pub kind: CniFileKind,
    /// The parsed configuration; `None` when the file is ignored or not valid JSON.
    pub config: Option<CniConfig>,
}

impl CniFile {
    /// Usable by the runtime: a configuration extension, valid, with at least one
    /// plugin that has a type (what libcni requires before it uses a file).
    pub fn is_usable(&self) -> bool {
        self.kind != CniFileKind::Ignored
            && self
                .config
                .as_ref()
                .is_some_and(|c| !c.plugins.is_empty() && c.plugins.iter().all(|p| p.has_type()))
    }
}

/// A network configuration (a `.conflist`, or a `.conf` seen as a list of one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniConfig {
    pub name: Option<String>,
    pub cni_version: Option<String>,
    pub plugins: Vec<CniPlugin>,
    /// Top-level fields not typed above (`disableCheck`, vendor keys …), as written.
    pub extra: Map<String, Value>,
}

/// One plugin of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniPlugin {
    /// `type`: the plugin binary (`bridge`, `ptp`, `flannel`, `calico`, `cilium-cni` …).
    pub plugin_type: Option<String>,
    /// `bridge`: the Linux bridge the bridge plugin creates (`cni0`).
    pub bridge: Option<String>,
    pub mtu: Option<u64>,
    pub hairpin_mode: Option<bool>,
    pub ip_masq: Option<bool>,
    pub is_gateway: Option<bool>,
    pub is_default_gateway: Option<bool>,
    pub ipam: Option<CniIpam>,
    /// flannel's `delegate`: the plugin flannel runs with its subnet filled in.
    pub delegate: Option<Box<CniPlugin>>,
    /// Fields not typed above (`capabilities`, `kubernetes`, `policy` …), as written.
    pub extra: Map<String, Value>,
}

impl CniPlugin {
    fn has_type(&self) -> bool {
        self.plugin_type.as_deref().is_some_and(|t| !t.is_empty())
    }
}

/// A plugin's `ipam` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniIpam {
    /// `type`: `host-local`, `calico-ipam`, `dhcp`, `static` …
    pub ipam_type: Option<String>,
    /// `subnet` (the older single-range host-local form).
    pub subnet: Option<String>,
    /// `ranges`: sets of ranges, each set one address per family.
    pub ranges: Vec<Vec<CniRange>>,
    pub data_dir: Option<String>,
    pub routes: Vec<CniRoute>,
    pub extra: Map<String, Value>,
}

/// One host-local range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniRange {
    pub subnet: Option<String>,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub gateway: Option<String>,
}

/// One IPAM route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniRoute {
    pub dst: Option<String>,
    pub gw: Option<String>,
}

/// The CNI configuration directory as the runtime sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniConfigs {
    /// Every file, in lexical order of file name.
    pub files: Vec<CniFile>,
    /// Index in `files` of the configuration kubelet's runtime uses: the first usable
    /// file in lexical order.
    pub used: Option<usize>,
}

impl CniConfigs {
    pub fn new(mut files: Vec<CniFile>) -> CniConfigs {
        files.sort_by(|a, b| a.file.cmp(&b.file));
        let used = files.iter().position(CniFile::is_usable);
        CniConfigs { files, used }
    }

    /// The configuration in use, if any.
    pub fn in_use(&self) -> Option<&CniFile> {
        self.files.get(self.used?)
    }
}

/// Parses one file of the directory; `path` is its bundle path, `file` its name.
pub fn parse_cni(path: &str, file: &str, text: &str) -> Parsed<CniFile> {
    let mut coverage = Coverage::new(path);
    let kind = CniFileKind::of(file);
    let config = match kind {
        CniFileKind::Ignored => None,
        CniFileKind::Conf | CniFileKind::Conflist => {
            parse_config(kind, text, &mut Fields::new(text, &mut coverage))
        }
    };
    if config.is_some() {
        coverage.ok();
    }
    Parsed {
        model: CniFile {
            path: path.to_string(),
            file: file.to_string(),
            kind,
            config,
        },
        coverage,
    }
}

fn parse_config(kind: CniFileKind, text: &str, f: &mut Fields<'_>) -> Option<CniConfig> {
    let mut top = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            f.miss_at(1, "not a JSON object");
            return None;
        }
        Err(e) => {
            // An error at the end of the input names the line after the last one.
            let last = text.lines().count().max(1);
            f.miss_at(e.line().clamp(1, last), &format!("invalid JSON: {e}"));
            return None;
        }
    };
    let name = f.string(&mut top, "name");
    let cni_version = f.string(&mut top, "cniVersion");
    let plugins = match top.remove("plugins") {
        // A `.conf` holding `plugins` is still read as the runtime would: one plugin.
        Some(Value::Array(items)) if kind == CniFileKind::Conflist => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(map) => Some(f.plugin(map)),
                other => {
                    f.miss("plugins", &format!("plugin is not an object: {other}"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            if kind == CniFileKind::Conflist {
                f.miss("plugins", "plugins is not an array");
            }
            top.insert("plugins".into(), other);
            single(kind, &mut top, f)
        }
        None => {
            if kind == CniFileKind::Conflist {
                f.miss("name", "a .conflist without plugins");
            }
            single(kind, &mut top, f)
        }
    };
    Some(CniConfig {
        name,
        cni_version,
        plugins,
        extra: top,
    })
}

/// A `.conf`: the top-level object is the one plugin (name and version stay on the
/// configuration).
fn single(kind: CniFileKind, top: &mut Map<String, Value>, f: &mut Fields<'_>) -> Vec<CniPlugin> {
    if kind == CniFileKind::Conflist {
        return Vec::new();
    }
    vec![f.plugin(std::mem::take(top))]
}

/// Takes typed fields out of JSON objects, recording a wrong type as a miss on the
/// line that names the field.
struct Fields<'a> {
    text: &'a str,
    coverage: &'a mut Coverage,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str, coverage: &'a mut Coverage) -> Fields<'a> {
        Fields { text, coverage }
    }

    fn miss_at(&mut self, line: usize, reason: &str) {
        let excerpt = self.text.lines().nth(line - 1).unwrap_or_default();
        self.coverage.miss(line, excerpt, reason);
    }

    /// A miss on the first line that names `key` (JSON errors carry no path).
    fn miss(&mut self, key: &str, reason: &str) {
        let quoted = format!("\"{key}\"");
        let line = self
            .text
            .lines()
            .position(|l| l.contains(&quoted))
            .map_or(1, |i| i + 1);
        self.miss_at(line, reason);
    }

    /// Takes `key` with `pick`; a value of another type stays in `map` (kept as
    /// written) and is reported.
    fn take<T>(
        &mut self,
        map: &mut Map<String, Value>,
        key: &str,
        what: &str,
        pick: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        let value = map.get(key)?;
        match pick(value) {
            Some(v) => {
                map.remove(key);
                Some(v)
            }
            None => {
                self.miss(key, &format!("{key}: expected {what}, found {value}"));
                None
            }
        }
    }

    fn string(&mut self, map: &mut Map<String, Value>, key: &str) -> Option<String> {
        self.take(map, key, "a string", |v| v.as_str().map(str::to_string))
    }

    fn bool(&mut self, map: &mut Map<String, Value>, key: &str) -> Option<bool> {
        self.take(map, key, "true or false", Value::as_bool)
    }

    fn plugin(&mut self, mut map: Map<String, Value>) -> CniPlugin {
        let ipam = self.take(&mut map, "ipam", "an object", |v| v.as_object().cloned());
        let delegate = self.take(&mut map, "delegate", "an object", |v| {
            v.as_object().cloned()
        });
        CniPlugin {
            plugin_type: self.string(&mut map, "type"),
            bridge: self.string(&mut map, "bridge"),
            mtu: self.take(&mut map, "mtu", "a number", Value::as_u64),
            hairpin_mode: self.bool(&mut map, "hairpinMode"),
            ip_masq: self.bool(&mut map, "ipMasq"),
            is_gateway: self.bool(&mut map, "isGateway"),
            is_default_gateway: self.bool(&mut map, "isDefaultGateway"),
            ipam: ipam.map(|m| self.ipam(m)),
            delegate: delegate.map(|m| Box::new(self.plugin(m))),
            extra: map,
        }
    }

    fn ipam(&mut self, mut map: Map<String, Value>) -> CniIpam {
        let ranges = self
            .take(&mut map, "ranges", "an array of arrays", |v| {
                v.as_array()?
                    .iter()
                    .map(|set| set.as_array()?.iter().map(range).collect())
                    .collect::<Option<Vec<Vec<CniRange>>>>()
            })
            .unwrap_or_default();
        let routes = self
            .take(&mut map, "routes", "an array of routes", |v| {
                v.as_array()?.iter().map(route).collect()
            })
            .unwrap_or_default();
        CniIpam {
            ipam_type: self.string(&mut map, "type"),
            subnet: self.string(&mut map, "subnet"),
            ranges,
            data_dir: self.string(&mut map, "dataDir"),
            routes,
            extra: map,
        }
    }
}

fn text_field(v: &Value, key: &str) -> Option<Option<String>> {
    match v.get(key) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    }
}

fn range(v: &Value) -> Option<CniRange> {
    v.as_object()?;
    Some(CniRange {
        subnet: text_field(v, "subnet")?,
        range_start: text_field(v, "rangeStart")?,
        range_end: text_field(v, "rangeEnd")?,
        gateway: text_field(v, "gateway")?,
    })
}

fn route(v: &Value) -> Option<CniRoute> {
    v.as_object()?;
    Some(CniRoute {
        dst: text_field(v, "dst")?,
        gw: text_field(v, "gw")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_follows_the_extension() {
        assert_eq!(CniFileKind::of("10-a.conflist"), CniFileKind::Conflist);
        assert_eq!(CniFileKind::of("10-a.conf"), CniFileKind::Conf);
        assert_eq!(CniFileKind::of("10-a.json"), CniFileKind::Conf);
        assert_eq!(CniFileKind::of("10-a.conflist.bak"), CniFileKind::Ignored);
    }

    #[test]
    fn wrong_type_is_kept_and_reported_on_its_line() {
        let text = "{\n  \"name\": \"n\",\n  \"type\": \"bridge\",\n  \"mtu\": \"1450\"\n}\n";
        let p = parse_cni("host/cni/a.conf", "a.conf", text);
        let plugin = &p.model.config.as_ref().unwrap().plugins[0];
        assert_eq!(plugin.mtu, None);
        assert_eq!(plugin.extra.get("mtu"), Some(&Value::from("1450")));
        assert_eq!(p.coverage.unrecognised.len(), 1);
        assert_eq!(p.coverage.unrecognised[0].line, 4);
    }
}
