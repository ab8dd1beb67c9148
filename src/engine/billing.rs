//! Billing steps shared by both kinds of SUT: a payment run of an AMC, and a return file
//! (`RSP-<numero>.xml`) expected in a return drop.

use super::check::{self, Checked};
use super::step::{Flow, Scope, StepRun};
use crate::mirror::amc::Amc;
use crate::outcome::{Exchange, Finding, HttpMessage, StepOutcome};
use crate::pack::template::Mode;
use crate::pack::{ExpectReturn, Pack, Step};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a payment run of the AMC is obtained.
#[derive(Clone)]
pub enum PaymentRunner {
    /// The embedded or mirror AMC, in-process.
    Embedded(Arc<Amc>),
    /// The profile's hook command (AMC under test), run by `sh -c` with `ROCLAB_RETURN_DROP`,
    /// killed past its time limit.
    Command(String, Duration),
    /// The AMC under test pays on its own: wait this long.
    Delay(Duration),
}

pub fn outcome(st: &Step, index: usize) -> StepOutcome {
    StepOutcome::new(index, st.label())
}

fn message(start_line: String, body: Option<String>) -> HttpMessage {
    let len = body.as_ref().map(|b| b.len()).unwrap_or(0);
    HttpMessage {
        start_line,
        status: None,
        headers: vec![],
        body,
        body_base64: None,
        body_len: len,
    }
}

/// Ask `amc` (an actor name, or `amc` for the SUT) for a payment run writing into `drop`;
/// an in-process AMC rejects the invoices numbered in `reject` (R25).
pub async fn payment_run(
    runner: Option<&PaymentRunner>,
    amc: &str,
    drop: &Path,
    reject: BTreeSet<String>,
    st: &Step,
    index: usize,
) -> StepRun {
    let mut out = outcome(st, index);
    let started = crate::net::client::now_rfc3339();
    let t0 = Instant::now();
    let result: Result<String, String> = match runner {
        None => Err("the profile says nothing of how to obtain a payment run (payment_run.command or payment_run.delay_ms)".into()),
        Some(PaymentRunner::Embedded(a)) => embedded_run(a, drop, reject.clone()).await,
        Some(PaymentRunner::Command(cmd, limit)) => {
            let r = tokio::time::timeout(
                *limit,
                tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .env("ROCLAB_RETURN_DROP", drop)
                    .kill_on_drop(true)
                    .output(),
            )
            .await;
            match r {
                Err(_) => Err(format!(
                    "payment-run hook `{cmd}` did not return within {} ms (payment_run.timeout_ms): killed",
                    limit.as_millis()
                )),
                Ok(r) => match r {
                Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
                Ok(o) => Err(format!(
                    "payment-run hook `{cmd}` failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Err(format!("payment-run hook `{cmd}` cannot start: {e}")),
            },
            }
        }
        Some(PaymentRunner::Delay(d)) => {
            tokio::time::sleep(*d).await;
            Ok(format!("waited {} ms for the AMC's own payment run", d.as_millis()))
        }
    };
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    // What the sequence diagram shows on the answer: the return files an in-process AMC
    // wrote (a hook's or a delay's are not known here).
    let done = match (&result, runner) {
        (Ok(w), Some(PaymentRunner::Embedded(_))) => {
            format!("DONE {} RSP", w.lines().filter(|l| !l.is_empty()).count())
        }
        _ => "DONE".to_string(),
    };
    match result {
        Ok(written) => {
            out.exchange = Some(Exchange {
                from: "lab".into(),
                to: amc.into(),
                operation: "payment run".into(),
                url: format!("file://{}", drop.display()),
                request: message(
                    "PAYMENT RUN".into(),
                    (!reject.is_empty()).then(|| {
                        format!(
                            "reject: {}",
                            reject.iter().cloned().collect::<Vec<_>>().join(" ")
                        )
                    }),
                ),
                response: Some(message(done, Some(written))),
                started,
                duration_ms: ms,
                latency_ms: ms,
                tls: None,
                error: None,
            });
            StepRun {
                outcome: out,
                flow: Flow::Continue,
            }
        }
        Err(e) => StepRun {
            outcome: out,
            flow: Flow::Error(format!("step {} at {}: {e}", index + 1, st.at)),
        },
    }
}

/// Wait for `RSP-<numero>.xml` in `drop` and check it like a message.
#[allow(clippy::too_many_arguments)]
pub async fn expect_return(
    pack: &Pack,
    drop: &Path,
    from: &str,
    to: &str,
    er: &ExpectReturn,
    scope: &mut Scope<'_>,
    st: &Step,
    index: usize,
) -> StepRun {
    let mut out = outcome(st, index);
    let vars = match scope.for_step(st) {
        Ok(v) => v,
        Err(e) => {
            return StepRun {
                outcome: out,
                flow: Flow::Error(format!("step {} at {}: {e}", index + 1, st.at)),
            };
        }
    };
    let numero = match er.numero.render(&vars, Mode::Text) {
        Ok(n) => n,
        Err(d) => {
            return StepRun {
                outcome: out,
                flow: Flow::Error(d.to_string()),
            };
        }
    };
    let path: PathBuf = drop.join(format!("RSP-{numero}.xml"));
    let started = crate::net::client::now_rfc3339();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(er.within_ms);
    let text = loop {
        if let Ok(t) = std::fs::read_to_string(&path) {
            break Some(t);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let Some(text) = text else {
        out.findings.push(Finding::new(
            "return",
            format!(
                "no return file {} within {} ms",
                path.display(),
                er.within_ms
            ),
            index,
        ));
        return StepRun {
            outcome: out,
            flow: Flow::Stop,
        };
    };
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    out.exchange = Some(Exchange {
        from: from.into(),
        to: to.into(),
        operation: "RSP".into(),
        url: format!("file://{}", path.display()),
        request: message(format!("FILE RSP-{numero}.xml"), Some(text.clone())),
        response: None,
        started,
        duration_ms: ms,
        latency_ms: ms,
        tls: None,
        error: None,
    });
    match crate::xml::parse(&text) {
        Err(e) => {
            out.findings.push(Finding::new(
                "xml",
                format!(
                    "the return file is not well-formed XML ({}:{}: {})",
                    e.line, e.col, e.message
                ),
                index,
            ));
            StepRun {
                outcome: out,
                flow: Flow::Stop,
            }
        }
        Ok(root) => {
            let mut checked = Checked {
                findings: vec![],
                captures: BTreeMap::new(),
                body_diff: None,
            };
            let known = scope.captures.clone();
            check::message(
                pack,
                None,
                &er.checks,
                &root,
                &vars,
                &known,
                index,
                &mut checked,
            );
            checked.record(&mut out, scope);
            let stop = out.findings.iter().any(|f| f.check == "capture");
            StepRun {
                outcome: out,
                flow: if stop { Flow::Stop } else { Flow::Continue },
            }
        }
    }
}

/// A payment run of an in-process AMC (off the async threads: it writes and syncs files): the
/// names of the files it wrote.
async fn embedded_run(
    amc: &Arc<Amc>,
    drop: &Path,
    reject: BTreeSet<String>,
) -> Result<String, String> {
    match amc.payment_run_async(drop.to_path_buf(), reject).await {
        Ok(files) => Ok(files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .collect::<Vec<_>>()
            .join("\n")),
        Err(e) => Err(format!("payment run into {}: {e}", drop.display())),
    }
}
