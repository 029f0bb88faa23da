//! Headless Chromium driven through chromedriver's WebDriver HTTP API, for the tests
//! and the benchmark of `netsnap report`: a plain HTTP/1.1 client on a loopback
//! socket, no browser automation framework.
//!
//! chromedriver is started in its own process group; [`Browser`]'s `Drop` ends the
//! session (Chromium quits), then kills that process group (chromedriver and any
//! Chromium left) by its id, also when a test panics. Chromium runs with a temporary
//! user-data-dir, removed afterwards.
//!
//! Whether to run: like the lab ([`crate::lab::require`]): without `chromium` and
//! `chromedriver` the test is skipped with the reason, unless `NETSNAP_LAB=required`.

mod http;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs them (packages `chromium`, `chromium-driver`).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// W3C's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Why the browser tests cannot run here, if they cannot.
pub fn unavailable_reason() -> Option<String> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} not installed (Debian: chromium chromium-driver; scripts/test installs them)",
            missing.join(" and ")
        )
    })
}

/// Starts a browser, or says why not: `None` (after a visible notice) to skip,
/// a panic when `NETSNAP_LAB=required`.
pub fn require() -> Option<Browser> {
    if !crate::lab::may_run("the browser test", unavailable_reason) {
        return None;
    }
    Some(Browser::start().unwrap_or_else(|e| panic!("cannot start Chromium: {e:#}")))
}

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Browser {
    /// chromedriver on a free loopback port, then a headless Chromium session.
    pub fn start() -> Result<Browser> {
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting chromedriver")?;
        let profile = tempfile::Builder::new()
            .prefix("netsnap-chromium-")
            .tempdir()?;
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        b.wait_ready()?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--window-size=1400,1000",
                         format!("--user-data-dir={}", b._profile.path().display())],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = b.call("POST", "/session", Some(caps))?;
        b.session = v["sessionId"]
            .as_str()
            .context("no sessionId in the new-session answer")?
            .to_string();
        Ok(b)
    }

    /// chromedriver answers `/status` ready (bounded: 20 s).
    fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.driver.try_wait()? {
                bail!("chromedriver exited at start ({status})");
            }
            if let Ok(v) = self.call("GET", "/status", None) {
                if v["ready"] == json!(true) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("chromedriver not ready after 20 s")
    }

    /// One WebDriver command; the answer's `value`, or its error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, v) = http::request(self.port, method, path, body.as_ref())?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status != 200 {
            bail!("{method} {path}: HTTP {status}: {}", value);
        }
        Ok(value)
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.session_call("POST", "/url", Some(json!({ "url": url })))?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Runs `script` asynchronously: it calls its last argument with the result.
    pub fn execute_async(&self, script: &str) -> Result<Value> {
        self.session_call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Types `text` into an element, as a user would.
    pub fn send_keys(&self, element: &str, text: &str) -> Result<()> {
        self.session_call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )?;
        Ok(())
    }

    /// The element `css` selects (the first), as a WebDriver reference.
    pub fn find(&self, css: &str) -> Result<String> {
        let v = self.session_call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v[ELEMENT]
            .as_str()
            .with_context(|| format!("no element reference for {css}: {v}"))?
            .to_string())
    }

    /// A real click (chromedriver scrolls the element into view and clicks its centre).
    pub fn click(&self, element: &str) -> Result<()> {
        self.session_call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )?;
        Ok(())
    }

    /// The page as PNG.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let v = self.session_call("GET", "/screenshot", None)?;
        let b64 = v.as_str().context("screenshot is not a string")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    /// Browser console entries since the last call (`level`, `message`).
    pub fn console(&self) -> Result<Vec<(String, String)>> {
        let v = self.session_call("POST", "/se/log", Some(json!({"type": "browser"})))?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                        (s("level"), s("message"))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        // chromedriver leads its own process group (process_group(0)): the group's id
        // is its pid; anything of it still alive (a Chromium after a failed DELETE)
        // goes with it.
        let pgid = self.driver.id() as i32;
        // SAFETY: kill(2) on a process group this struct created; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}
