//! Drivers make a GAP act on a trigger: the embedded reference GAP (`builtin`), a command, an
//! HTTP test hook of the editor, or a person (`operator`). See docs/drivers.md.

use crate::mirror::gap::{GapConfig, ReferenceGap};
use crate::outcome::Finding;
use serde_json::Value;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How much of each output stream of a failed driver is kept (its end).
pub const OUTPUT_KEPT: usize = 4096;

/// A driver action that failed: it exited non-zero, its hook answered non-2xx, it could not
/// start, or it outlived `driver.timeout_ms`. It ends the wait of the step under way and is the
/// scenario's cause.
#[derive(Debug, Clone)]
pub struct DriverFailure {
    /// One line: `driver, compute #1: command `…` failed (exit status: 7): boom`.
    pub message: String,
    /// What the driver printed or answered (exit status, the last 4 KiB of stderr and of
    /// stdout; a hook's answer), kept as the finding's `actual`.
    pub output: Option<String>,
    /// The person at the GAP's screens reported that the GAP could not do what was asked: a
    /// finding of the GAP (check `operator`), not a failure of the lab's driver.
    pub by_operator: bool,
}

impl DriverFailure {
    pub fn new(message: String) -> Self {
        Self {
            message,
            output: None,
            by_operator: false,
        }
    }

    /// The `driver` finding (`operator` when the person reported the GAP could not act) of
    /// step `step`.
    pub fn finding(&self, step: usize) -> Finding {
        let check = if self.by_operator {
            "operator"
        } else {
            "driver"
        };
        Finding {
            actual: self.output.clone(),
            ..Finding::new(check, self.message.clone(), step)
        }
    }
}

/// The end of `bytes` (at most [`OUTPUT_KEPT`] bytes, cut at a character boundary), as text.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.len() <= OUTPUT_KEPT {
        return text.to_string();
    }
    let mut start = text.len() - OUTPUT_KEPT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[…]{}", &text[start..])
}

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

type Action = JoinHandle<Result<Value, DriverFailure>>;

/// The driver of one scenario: the actions it started, to be awaited at the end.
pub struct DriverSession {
    gap: Option<Arc<ReferenceGap>>,
    tasks: Vec<(String, Action)>,
    counter: usize,
    /// Each failure, as it happens (see [`DriverSession::failed`]).
    failures_tx: mpsc::UnboundedSender<DriverFailure>,
    failures: mpsc::UnboundedReceiver<DriverFailure>,
    /// Failures already taken through [`DriverSession::failed`] (not reported again).
    reported: BTreeSet<String>,
}

impl DriverSession {
    pub fn new(ctx: &DriverContext) -> Self {
        let gap = match (&ctx.config, &ctx.gap) {
            (DriverConfig::Builtin { .. }, Some(cfg)) => {
                Some(Arc::new(ReferenceGap::new(cfg.clone())))
            }
            _ => None,
        };
        let (failures_tx, failures) = mpsc::unbounded_channel();
        Self {
            gap,
            tasks: vec![],
            counter: 0,
            failures_tx,
            failures,
            reported: BTreeSet::new(),
        }
    }

    /// Run `action` in the background for at most `timeout`; a failure is also sent to
    /// [`DriverSession::failed`] at once.
    fn spawn(
        &mut self,
        label: String,
        timeout: Duration,
        action: impl Future<Output = Result<Value, DriverFailure>> + Send + 'static,
    ) {
        let tx = self.failures_tx.clone();
        let l = label.clone();
        let task = tokio::spawn(async move {
            let r = match tokio::time::timeout(timeout, action).await {
                Ok(r) => r,
                // Dropping the action kills a command (kill_on_drop).
                Err(_) => Err(DriverFailure::new(format!(
                    "not finished after {} ms (driver.timeout_ms): stopped",
                    timeout.as_millis()
                ))),
            };
            r.map_err(|mut f| {
                f.message = format!("driver, {l}: {}", f.message);
                let _ = tx.send(f.clone());
                f
            })
        });
        self.tasks.push((label, task));
    }

    /// The next action that fails and was not reported yet (pending until one does): for a
    /// wait to end on it.
    pub async fn failed(&mut self) -> DriverFailure {
        loop {
            let f = self
                .failures
                .recv()
                .await
                .expect("the session holds a sender");
            if self.reported.insert(f.message.clone()) {
                return f;
            }
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
                self.spawn(label, ctx.timeout, async move {
                    gap.perform(&doc).await.map_err(DriverFailure::new)
                });
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
                // The command stops itself at the timeout, keeping what it printed.
                let slack = ctx.timeout + Duration::from_secs(2);
                self.spawn(label, slack, run_command(cmd, command, ctx.timeout));
            }
            DriverConfig::Http { url } => {
                let url = url.clone();
                let body = serde_json::to_vec(&doc).expect("json");
                self.spawn(
                    label,
                    ctx.timeout,
                    async move { http_post(&url, body).await },
                );
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
    pub async fn last_result(&mut self, timeout: Duration) -> Result<Value, DriverFailure> {
        let (label, task) = self.tasks.pop().ok_or_else(|| {
            DriverFailure::new(
                "no driver result: no trigger was started before, or the driver (operator) gives none; \
                 a result is checked through a command, http or builtin driver"
                    .into(),
            )
        })?;
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(r)) => r.inspect_err(|f| {
                self.reported.insert(f.message.clone());
            }),
            Ok(Err(e)) => Err(DriverFailure::new(format!("driver, {label}: {e}"))),
            Err(_) => Err(DriverFailure::new(format!(
                "driver, {label}: not finished after {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// Whether an action failed (the GAP will not act on it: nothing more to wait for).
    pub fn has_failed(&self) -> bool {
        !self.reported.is_empty()
    }

    /// Whether every started action has finished.
    pub fn idle(&self) -> bool {
        self.tasks.iter().all(|(_, t)| t.is_finished())
    }

    /// Wait for the started actions (at most `timeout`); their failures not already taken
    /// through [`DriverSession::failed`].
    pub async fn finish(&mut self, timeout: Duration) -> Vec<DriverFailure> {
        let mut errors = vec![];
        let deadline = tokio::time::Instant::now() + timeout;
        for (label, task) in self.tasks.drain(..) {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(f))) => {
                    if !self.reported.contains(&f.message) {
                        errors.push(f);
                    }
                }
                Ok(Err(e)) => errors.push(DriverFailure::new(format!("driver, {label}: {e}"))),
                Err(_) => errors.push(DriverFailure::new(format!(
                    "driver, {label}: not finished after {} ms",
                    timeout.as_millis()
                ))),
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

/// Run a driver command to its end (killed after `timeout`): what it prints on stdout (JSON if it
/// parses) is the result; a non-zero exit or the timeout is a failure carrying the exit status
/// and the end of what it printed.
async fn run_command(
    mut cmd: tokio::process::Command,
    command: String,
    timeout: Duration,
) -> Result<Value, DriverFailure> {
    use tokio::io::AsyncReadExt;
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| DriverFailure::new(format!("command `{command}` cannot start: {e}")))?;
    // Read as it comes, so that what was printed is there even if the command is stopped.
    let read = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
                buf: Arc<Mutex<Vec<u8>>>| {
        tokio::spawn(async move {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buf.lock().expect("buffer").extend_from_slice(&chunk[..n]);
            }
        })
    };
    let (out, err) = (Arc::default(), Arc::default());
    let readers = [
        read(
            child.stdout.take().map(|p| Box::new(p) as Box<_>),
            Arc::clone(&out),
        ),
        read(
            child.stderr.take().map(|p| Box::new(p) as Box<_>),
            Arc::clone(&err),
        ),
    ];
    /// Stops the readers however this ends (a command timed out is dropped mid-wait).
    struct Abort<const N: usize>([JoinHandle<()>; N]);
    impl<const N: usize> Drop for Abort<N> {
        fn drop(&mut self) {
            self.0.iter().for_each(JoinHandle::abort);
        }
    }
    let mut readers = Abort(readers);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => Some(s.map_err(|e| {
            DriverFailure::new(format!("command `{command}` cannot be awaited: {e}"))
        })?),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    // The output ends with the command, or soon after (a background process may hold it).
    for r in &mut readers.0 {
        let _ = tokio::time::timeout(Duration::from_millis(500), r).await;
    }
    let take = |b: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().expect("buffer"));
    let (stdout, stderr) = (take(&out), take(&err));
    if status.is_some_and(|s| s.success()) {
        let stdout = String::from_utf8_lossy(&stdout).trim().to_string();
        return Ok(serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)));
    }
    let (stdout, stderr) = (tail(&stdout), tail(&stderr));
    let (what, mut output) = match status {
        Some(s) => (format!("failed ({s})"), s.to_string()),
        None => (
            format!(
                "not finished after {} ms (driver.timeout_ms): stopped",
                timeout.as_millis()
            ),
            "killed at the timeout".to_string(),
        ),
    };
    for (name, text) in [("stderr", &stderr), ("stdout", &stdout)] {
        if !text.is_empty() {
            output.push_str(&format!(
                "\n--- {name} (last {} KiB) ---\n{text}",
                OUTPUT_KEPT / 1024
            ));
        }
    }
    let last = stderr
        .lines()
        .rev()
        .chain(stdout.lines().rev())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(it printed nothing)");
    Err(DriverFailure {
        message: format!("command `{command}` {what}: {last}"),
        output: Some(output),
        by_operator: false,
    })
}

/// POST JSON to a plain `http://host:port/path` test hook; a 2xx answer's body is the result.
async fn http_post(url: &str, body: Vec<u8>) -> Result<Value, DriverFailure> {
    http_post_text(url, body)
        .await
        .map_err(|(message, body)| DriverFailure {
            message,
            output: body.map(|b| tail(b.as_bytes())),
            by_operator: false,
        })
}

/// [`http_post`]: the failure's message, and the body of a non-2xx answer.
async fn http_post_text(url: &str, body: Vec<u8>) -> Result<Value, (String, Option<String>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        (
            format!("url `{url}`: only http:// test hooks are supported"),
            None,
        )
    })?;
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
        .map_err(|e| (format!("hook {url}: {e}"), None))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let sent = |e: std::io::Error| (format!("hook {url}: {e}"), None);
    s.write_all(head.as_bytes()).await.map_err(sent)?;
    s.write_all(&body).await.map_err(sent)?;
    let mut buf = vec![];
    s.read_to_end(&mut buf)
        .await
        .map_err(|e| (format!("hook {url}: {e}"), None))?;
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| (format!("hook {url}: not an HTTP answer"), None))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    if !(200..300).contains(&status) {
        let first: String = body
            .trim()
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        return Err((
            format!("hook {url} answered HTTP {status}: {first}"),
            Some(format!("HTTP {status}\n{}", body.trim())),
        ));
    }
    Ok(serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}
