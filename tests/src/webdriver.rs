//! A small W3C WebDriver client (the JSON wire protocol over plain HTTP, through `ureq`)
//! driving Debian's headless Chromium through `chromedriver`: just what the HMI test
//! needs (open a page, find elements, read text, type, click, run a script). Each call
//! fails with the driver's own error message, never a silent default.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The W3C name of the element reference key in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A `chromedriver` this process started, stopped when dropped.
pub struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A command that hangs (the browser stuck) fails the test instead of hanging it.
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, body) => agent.post(url).send_json(body.unwrap_or_else(|| json!({}))),
    };
    let mut response = response.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status();
    let v: Value = response
        .body_mut()
        .read_json()
        .map_err(|e| format!("{method} {url}: answer is no JSON: {e}"))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!(
            "{method} {url}: {status}: {} {}",
            value["error"].as_str().unwrap_or("?"),
            value["message"].as_str().unwrap_or("")
        ));
    }
    Ok(value)
}

impl Driver {
    /// Starts `chromedriver` on a free local port and waits for the line saying it
    /// listens.
    pub fn start(program: &str) -> Result<Self, String> {
        let port = xtask::qemu::free_local_port().map_err(|e| e.to_string())?;
        let mut child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("started successfully") => break,
                Some(Ok(line)) => println!("chromedriver: {line}"),
                _ => {
                    let _ = child.kill();
                    return Err(format!("{program} exited before it listened"));
                }
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent: agent(),
        })
    }

    /// A new headless browser session with `binary`.
    pub fn session(&self, binary: &str) -> Result<Session<'_>, String> {
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                // Root in a container: no sandbox; no GPU, no first-run prompts.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run", "--window-size=1200,900"]
            }
        }}});
        let v = call(
            &self.agent,
            "POST",
            &format!("{}/session", self.base),
            Some(caps),
        )?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {v}"))?
            .to_string();
        Ok(Session {
            driver: self,
            url: format!("{}/session/{id}", self.base),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session, ended when dropped.
pub struct Session<'a> {
    driver: &'a Driver,
    url: String,
}

/// A reference to an element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Session<'_> {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        call(
            &self.driver.agent,
            method,
            &format!("{}{path}", self.url),
            body,
        )
    }

    pub fn open(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    pub fn find(&self, css: &str) -> Result<Element, String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        v[ELEMENT_KEY]
            .as_str()
            .map(|id| Element(id.to_string()))
            .ok_or_else(|| format!("{css}: no element reference in {v}"))
    }

    pub fn text(&self, e: &Element) -> Result<String, String> {
        let v = self.cmd("GET", &format!("/element/{}/text", e.0), None)?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub fn attribute(&self, e: &Element, name: &str) -> Result<String, String> {
        let v = self.cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The text of the element `css` finds.
    pub fn text_of(&self, css: &str) -> Result<String, String> {
        self.text(&self.find(css)?)
    }

    pub fn clear(&self, e: &Element) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{}/clear", e.0), None)
            .map(drop)
    }

    pub fn type_text(&self, e: &Element, text: &str) -> Result<(), String> {
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    pub fn click(&self, e: &Element) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{}/click", e.0), None)
            .map(drop)
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub fn script(&self, script: &str) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Asks `check` until it gives a value (each try is a round trip to the browser,
    /// which is what paces it), or fails after `timeout` with the last state seen.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Result<Option<T>, String>,
    ) -> Result<T, String> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            match check(self) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last = e,
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{what}: not seen in {} s (last error: {last})",
                    timeout.as_secs()
                ));
            }
            // The page polls the HMI 4 times a second: asking much faster sees nothing new.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = call(&self.driver.agent, "DELETE", &self.url, None);
    }
}
