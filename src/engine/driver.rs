//! Drivers make a GAP act on a trigger: the embedded reference GAP (`builtin`), a command, an
//! HTTP test hook of the editor, or a person (`operator`). See docs/drivers.md.

use crate::mirror::gap::{GapConfig, ReferenceGap};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How the profile makes the GAP act.
#[derive(Debug, Clone)]
pub enum DriverConfig {
    Builtin { defects: BTreeSet<String> },
    Command { command: String },
    Http { url: String },
    Operator,
}

impl DriverConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Builtin { .. } => "builtin",
            Self::Command { .. } => "command",
            Self::Http { .. } => "http",
            Self::Operator => "operator",
        }
    }
}

/// What a driver needs to act for a run.
pub struct DriverContext {
    pub config: DriverConfig,
    /// Reference GAP configuration (builtin driver).
    pub gap: Option<GapConfig>,
    /// Folder for trigger files.
    pub work_dir: PathBuf,
    /// Time a driver's actions may take, counted from the trigger to the end of the scenario.
    pub timeout: Duration,
    /// Set when the operator answers `f` (the case fails).
    pub operator_failed: Arc<AtomicBool>,
}

/// The driver of one scenario: the actions it started, to be awaited at the end.
pub struct DriverSession {
    gap: Option<Arc<ReferenceGap>>,
    tasks: Vec<(String, JoinHandle<Result<Value, String>>)>,
    counter: usize,
}

impl DriverSession {
    pub fn new(ctx: &DriverContext) -> Self {
        let gap = match (&ctx.config, &ctx.gap) {
            (DriverConfig::Builtin { .. }, Some(cfg)) => {
                Some(Arc::new(ReferenceGap::new(cfg.clone())))
            }
            _ => None,
        };
        Self {
            gap,
            tasks: vec![],
            counter: 0,
        }
    }

    /// Start the action described by `doc` (docs/drivers.md). Returns at once; the action runs
    /// in the background. `instruction` is (French, English) for the operator.
    pub fn trigger(
        &mut self,
        ctx: &DriverContext,
        doc: Value,
        instruction: Option<&(String, String)>,
    ) -> Result<(), String> {
        self.counter += 1;
        let action = doc["action"].as_str().unwrap_or("").to_string();
        let label = format!("{} #{}", action, self.counter);
        match &ctx.config {
            DriverConfig::Builtin { .. } => {
                let gap = self
                    .gap
                    .clone()
                    .ok_or("the builtin driver has no reference GAP")?;
                self.tasks
                    .push((label, tokio::spawn(async move { gap.perform(&doc).await })));
            }
            DriverConfig::Command { command } => {
                let scenario = doc["scenario"].as_str().unwrap_or("scenario").to_string();
                std::fs::create_dir_all(&ctx.work_dir)
                    .map_err(|e| format!("{}: {e}", ctx.work_dir.display()))?;
                let file = ctx
                    .work_dir
                    .join(format!("{scenario}-{}.json", self.counter));
                std::fs::write(&file, serde_json::to_vec_pretty(&doc).expect("json"))
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                let mut cmd = tokio::process::Command::new("sh");
                cmd.arg("-c")
                    .arg(command)
                    .env("ROCLAB_TRIGGER", &file)
                    .env("ROCLAB_ACTION", &action)
                    .env("ROCLAB_SCENARIO", &scenario)
                    .env(
                        "ROCLAB_ANNUAIRE_URL",
                        doc["lab"]["annuaire_url"].as_str().unwrap_or(""),
                    )
                    .env("ROCLAB_CA", doc["lab"]["ca"].as_str().unwrap_or(""))
                    .env(
                        "ROCLAB_RETURN_DROP",
                        doc["lab"]["return_drop"].as_str().unwrap_or(""),
                    )
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true);
                let command = command.clone();
                self.tasks.push((
                    label,
                    tokio::spawn(async move {
                        let out = cmd
                            .output()
                            .await
                            .map_err(|e| format!("driver command `{command}` cannot start: {e}"))?;
                        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
                        if !out.status.success() {
                            let err = String::from_utf8_lossy(&out.stderr);
                            return Err(format!(
                                "driver command `{command}` failed ({}): {}",
                                out.status,
                                err.trim().lines().last().unwrap_or("")
                            ));
                        }
                        Ok(serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)))
                    }),
                ));
            }
            DriverConfig::Http { url } => {
                let url = url.clone();
                let body = serde_json::to_vec(&doc).expect("json");
                self.tasks.push((
                    label,
                    tokio::spawn(async move { http_post(&url, body).await }),
                ));
            }
            DriverConfig::Operator => {
                let (fr, en) = instruction
                    .cloned()
                    .unwrap_or_else(|| (format!("Action : {action}"), format!("Action: {action}")));
                let data = serde_json::to_string_pretty(&doc["data"]).unwrap_or_default();
                eprintln!(
                    "\n=== {} — {} ===\nFR : {fr}\nEN: {en}\n{data}\n(the expected request ends the wait; type f + Enter if the GAP cannot do it)\n",
                    doc["scenario"].as_str().unwrap_or(""),
                    action
                );
                operator_stdin(ctx.operator_failed.clone());
            }
        }
        Ok(())
    }

    /// Wait for the last action started (at most `timeout`) and take what the driver answered.
    pub async fn last_result(&mut self, timeout: Duration) -> Result<Value, String> {
        let (label, task) = self.tasks.pop().ok_or(
            "no driver result: no trigger was started before, or the driver (operator) gives none; \
             a result is checked through a command, http or builtin driver",
        )?;
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(r)) => r.map_err(|e| format!("driver, {label}: {e}")),
            Ok(Err(e)) => Err(format!("driver, {label}: {e}")),
            Err(_) => Err(format!(
                "driver, {label}: not finished after {} ms",
                timeout.as_millis()
            )),
        }
    }

    /// Whether every started action has finished.
    pub fn idle(&self) -> bool {
        self.tasks.iter().all(|(_, t)| t.is_finished())
    }

    /// Wait for the started actions (at most `timeout`); the errors they reported.
    pub async fn finish(&mut self, timeout: Duration) -> Vec<String> {
        let mut errors = vec![];
        let deadline = tokio::time::Instant::now() + timeout;
        for (label, task) in self.tasks.drain(..) {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(e))) => errors.push(format!("driver, {label}: {e}")),
                Ok(Err(e)) => errors.push(format!("driver, {label}: {e}")),
                Err(_) => errors.push(format!(
                    "driver, {label}: not finished after {} ms",
                    timeout.as_millis()
                )),
            }
        }
        errors
    }
}

/// Read the operator's answers once for the whole run: a line `f` fails the current case.
fn operator_stdin(failed: Arc<AtomicBool>) {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.trim().eq_ignore_ascii_case("f") {
                failed.store(true, Ordering::SeqCst);
            }
            line.clear();
        }
    });
}

/// POST JSON to a plain `http://host:port/path` test hook; a 2xx answer's body is the result.
async fn http_post(url: &str, body: Vec<u8>) -> Result<Value, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("driver url `{url}`: only http:// test hooks are supported"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let mut s = tokio::net::TcpStream::connect(&hostport)
        .await
        .map_err(|e| format!("driver hook {url}: {e}"))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(&body).await.map_err(|e| e.to_string())?;
    let mut buf = vec![];
    s.read_to_end(&mut buf)
        .await
        .map_err(|e| format!("driver hook {url}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("driver hook {url}: not an HTTP answer"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    if !(200..300).contains(&status) {
        return Err(format!(
            "driver hook {url} answered HTTP {status}: {}",
            body.trim()
        ));
    }
    Ok(serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}
