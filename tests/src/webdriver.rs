//! A small W3C WebDriver client, enough to drive Berth Desktop through tauri-driver
//! (which starts WebKitWebDriver, which starts the app).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver server at `http://127.0.0.1:<port>`.
#[derive(Debug, Clone)]
pub struct WebDriver {
    base: String,
    agent: ureq::Agent,
}

impl WebDriver {
    pub fn new(port: u16) -> WebDriver {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into();
        WebDriver { base: format!("http://127.0.0.1:{port}"), agent }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let response = match method {
            // WebKitWebDriver wants a JSON body on every POST, `{}` at least.
            "POST" => self.agent.post(&url).send_json(body.unwrap_or_else(|| json!({}))),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.get(&url).call(),
        };
        let mut response = response.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let value: Value = response.body_mut().read_json().map_err(|e| format!("{method} {path}: {e}"))?;
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if status >= 400 || value.get("error").is_some() {
            return Err(format!("{method} {path} -> {status}: {value}"));
        }
        Ok(value)
    }

    /// Waits until the driver (and the native driver behind it) is ready.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(v) = self.call("GET", "/status", None) {
                if v["ready"] == json!(true) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("WebDriver at {} not ready within {timeout:?}", self.base));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts the application (a Tauri binary) in a new session.
    pub fn session(&self, application: &Path) -> Result<Session, String> {
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "tauri:options": { "application": application.display().to_string(), "args": [] }
            }}
        });
        let v = self.call("POST", "/session", Some(caps))?;
        let id = v["sessionId"].as_str().ok_or("no sessionId")?.to_owned();
        Ok(Session { driver: self.clone(), id })
    }
}

/// One session: one app window.
#[derive(Debug)]
pub struct Session {
    driver: WebDriver,
    id: String,
}

impl Session {
    fn path(&self, tail: &str) -> String {
        format!("/session/{}{tail}", self.id)
    }

    pub fn url(&self) -> Result<String, String> {
        Ok(self.driver.call("GET", &self.path("/url"), None)?.as_str().unwrap_or_default().to_owned())
    }

    pub fn find(&self, css: &str) -> Result<String, String> {
        let v = self.driver.call("POST", &self.path("/element"), Some(json!({"using": "css selector", "value": css})))?;
        v[ELEMENT_KEY].as_str().map(str::to_owned).ok_or_else(|| format!("bad element reference {v}"))
    }

    pub fn text(&self, css: &str) -> Result<String, String> {
        let el = self.find(css)?;
        Ok(self.driver.call("GET", &self.path(&format!("/element/{el}/text")), None)?.as_str().unwrap_or_default().to_owned())
    }

    pub fn enabled(&self, css: &str) -> Result<bool, String> {
        let el = self.find(css)?;
        Ok(self.driver.call("GET", &self.path(&format!("/element/{el}/enabled")), None)? == json!(true))
    }

    pub fn click(&self, css: &str) -> Result<(), String> {
        let el = self.find(css)?;
        self.driver.call("POST", &self.path(&format!("/element/{el}/click")), None).map(drop)
    }

    /// Polls until the element's text satisfies `want`; returns the text.
    pub fn wait_text(&self, css: &str, timeout: Duration, want: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Ok(text) = self.text(css) {
                if want(&text) {
                    return Ok(text);
                }
                last = text;
            }
            if Instant::now() > deadline {
                return Err(format!("{css}: still {last:?} after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until an element matches `css`; returns its reference.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find(css) {
                Ok(el) => return Ok(el),
                Err(err) if Instant::now() > deadline => return Err(format!("{css} never appeared within {timeout:?}: {err}")),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Waits until nothing matches `css`.
    pub fn wait_gone(&self, css: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            // The page may re-render mid-query: WebDriver's `stale element reference`
            // error code then means "look again", which this loop does anyway.
            match self.driver.call("POST", &self.path("/elements"), Some(json!({"using": "css selector", "value": css}))) {
                Ok(found) if found.as_array().is_some_and(Vec::is_empty) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.contains(r#""error":"stale element reference""#) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(format!("{css} still there after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clears a field and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let el = self.find(css)?;
        self.driver.call("POST", &self.path(&format!("/element/{el}/clear")), None)?;
        self.driver.call("POST", &self.path(&format!("/element/{el}/value")), Some(json!({"text": text}))).map(drop)
    }

    /// Presses keys as the keyboard would, into whatever has the focus (WebDriver key
    /// codes: "\u{E015}" is ArrowDown, "\u{E007}" Enter).
    pub fn press(&self, keys: &str) -> Result<(), String> {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.driver.call("POST", &self.path("/actions"), Some(body)).map(drop)
    }

    /// The `id` attribute of the element that has the focus.
    pub fn focused_id(&self) -> Result<String, String> {
        let v = self.driver.call("GET", &self.path("/element/active"), None)?;
        let el = v[ELEMENT_KEY].as_str().ok_or_else(|| format!("bad element reference {v}"))?;
        Ok(self.driver.call("GET", &self.path(&format!("/element/{el}/attribute/id")), None)?.as_str().unwrap_or_default().to_owned())
    }

    /// Runs a script in the window and returns its value.
    pub fn script(&self, script: &str) -> Result<Value, String> {
        self.driver.call("POST", &self.path("/execute/sync"), Some(json!({"script": script, "args": []})))
    }

    pub fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let v = self.driver.call("GET", &self.path("/screenshot"), None)?;
        base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).map_err(|e| e.to_string())
    }

    /// Ends the session (closes the app).
    pub fn close(self) -> Result<(), String> {
        self.driver.call("DELETE", &self.path(""), None).map(drop)
    }
}
