//! The `command` collector: runs a program and reads one observation per line of its
//! standard output (JSON lines), so any system can be plugged in without recompiling.
//!
//! The line schema is in `docs/collectors/command.md`. A non-zero exit, a timeout or an
//! invalid line fails the run, with the tail of the program's standard error in the
//! message; valid lines before the failure are still recorded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::Common;
use crate::driver::{Run, Source};
use crate::{CollectContext, CollectError, Content, Observation};

/// Default time a program may run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest accepted output line.
const MAX_LINE: usize = 16 << 20;
/// Bytes of standard error kept for the message.
const STDERR_TAIL: usize = 2048;

/// `kind = "command"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program: a path (relative to the config file) or a name found on `PATH`.
    pub program: PathBuf,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Where it runs (default: the config file's directory).
    #[serde(default)]
    pub workdir: Option<PathBuf>,
}

impl CommandConfig {
    pub(super) fn resolve(&mut self, base: &Path, clean: impl Fn(&Path) -> PathBuf) {
        if self.program.components().count() > 1 {
            self.program = clean(&base.join(&self.program));
        }
        self.workdir = Some(clean(
            &base.join(self.workdir.as_deref().unwrap_or(Path::new("."))),
        ));
    }
}

/// One line of the program's output.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    uri: String,
    kind: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    content_path: Option<PathBuf>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    controls: Vec<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    effective_date: Option<NaiveDate>,
}

/// A running command collector.
#[derive(Debug)]
pub struct CommandCollector {
    name: String,
    cfg: CommandConfig,
    timeout: Duration,
}

impl CommandCollector {
    /// Builds the collector from its config.
    pub fn with(name: &str, cfg: &CommandConfig, common: &Common) -> Self {
        CommandCollector {
            name: name.to_owned(),
            cfg: cfg.clone(),
            timeout: common.timeout.unwrap_or(DEFAULT_TIMEOUT),
        }
    }

    fn parse(&self, cx: &CollectContext, n: usize, text: &str) -> Result<Observation, String> {
        let l: Line = serde_json::from_str(text)
            .map_err(|e| format!("line {n} is not a valid observation: {e}"))?;
        if l.uri.trim().is_empty() || l.kind.trim().is_empty() {
            return Err(format!("line {n}: uri and kind must not be empty"));
        }
        let content = match (l.content, l.content_path) {
            (Some(c), None) => Content::Bytes(c.into_bytes()),
            (None, Some(p)) => {
                let p = self
                    .cfg
                    .workdir
                    .as_deref()
                    .unwrap_or(Path::new("."))
                    .join(p);
                let real = std::fs::canonicalize(&p)
                    .map_err(|e| format!("line {n}: content_path {}: {e}", p.display()))?;
                if cx.private_paths.iter().any(|x| {
                    real.starts_with(std::fs::canonicalize(x).unwrap_or_else(|_| x.clone()))
                }) {
                    return Err(format!(
                        "line {n}: content_path {} is inside Evident's state directory",
                        p.display()
                    ));
                }
                Content::File(real)
            }
            _ => {
                return Err(format!(
                    "line {n}: give exactly one of content and content_path"
                ));
            }
        };
        let mut o = Observation::new(l.uri, l.kind, content);
        o.title = l.title;
        o.media_type = l.media_type.or_else(|| {
            Some("application/json".into()).filter(|_| matches!(o.content, Content::Bytes(_)))
        });
        o.control_hints = l.controls;
        o.labels = l.labels;
        o.created_at = l.created_at;
        o.updated_at = l.updated_at;
        o.effective_date = l.effective_date;
        Ok(o)
    }

    /// Records each valid line of `stdout` (counted in `kept`, which a timeout may cut
    /// short) until its end or the first bad line; returns what stopped it early.
    async fn read_lines(
        &self,
        run: &mut Run<'_>,
        stdout: tokio::process::ChildStdout,
        kept: &mut usize,
    ) -> Option<String> {
        let cx = run.context();
        let mut lines = BufReader::new(stdout);
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            buf.clear();
            let got = (&mut lines)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .await;
            match got {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(format!("reading its output: {e}")),
            }
            n += 1;
            if buf.len() > MAX_LINE {
                let why = format!(
                    "line {n} is longer than {} MiB; write large content to a file and use content_path",
                    MAX_LINE >> 20
                );
                return Some(why);
            }
            let text = String::from_utf8_lossy(&buf);
            if text.trim().is_empty() {
                continue;
            }
            match self.parse(cx, n, text.trim()) {
                Ok(o) => {
                    *kept += 1;
                    run.push(o);
                }
                Err(e) => return Some(e),
            }
        }
    }

    async fn execute(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let mut cmd = tokio::process::Command::new(&self.cfg.program);
        cmd.args(&self.cfg.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so a timeout also stops what it started (a shell's children).
        cmd.process_group(0);
        if let Some(d) = &self.cfg.workdir {
            cmd.current_dir(d);
        }
        let program = self.cfg.program.display().to_string();
        let mut child = cmd.spawn().map_err(|e| CollectError::Config(format!(
            "collector `{}`: cannot start {program}: {e}; check `program` (a path, or a name on PATH)",
            self.name
        )))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(CollectError::Task(
                "the program's output pipes are missing".into(),
            ));
        };
        let err_task = tokio::spawn(stderr_tail(stderr));
        let mut problem: Option<String> = None;
        let mut kept = 0usize;
        let read = async {
            problem = self.read_lines(run, stdout, &mut kept).await;
        };
        let timed_out = tokio::time::timeout(self.timeout, read).await.is_err();
        let kill_group = |child: &tokio::process::Child| {
            if let Some(pid) = child
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(id as i32))
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        };
        let status = if timed_out || problem.is_some() {
            kill_group(&child);
            child.wait().await.ok()
        } else {
            match tokio::time::timeout(self.timeout, child.wait()).await {
                Ok(s) => s.ok(),
                Err(_) => {
                    kill_group(&child);
                    problem = Some(format!("did not exit within {} s", self.timeout.as_secs()));
                    None
                }
            }
        };
        let stderr = err_task.await.unwrap_or_default();
        if timed_out {
            problem = Some(format!(
                "timed out after {} s (raise `timeout`)",
                self.timeout.as_secs()
            ));
        } else if problem.is_none() && !status.is_some_and(|s| s.success()) {
            problem = Some(match status.and_then(|s| s.code()) {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".into(),
            });
        }
        if let Some(p) = problem {
            let tail = if stderr.is_empty() {
                String::new()
            } else {
                format!("; its stderr ends: {stderr}")
            };
            tracing::warn!(collector = %self.name, "{program} {p}{tail}");
            return Err(CollectError::Remote {
                message: format!("{program} {p}; {kept} valid line(s) before it were kept{tail}"),
                retryable: true,
                retry_after: None,
            });
        }
        Ok(())
    }
}

/// The last [`STDERR_TAIL`] bytes a program writes to standard error, for the message.
async fn stderr_tail(mut stderr: tokio::process::ChildStderr) -> String {
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL * 2 {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    let start = tail.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&tail[start..]).trim().to_owned()
}

/// Where `program` is: the path itself when it names one (`./x`, `/usr/bin/x`), else the
/// first executable of that name on `PATH`; or why it cannot run.
pub fn find_program(program: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 || program.is_absolute() {
        return match std::fs::metadata(program) {
            Err(e) => Err(format!("program {}: {e}", program.display())),
            Ok(m) if !m.is_file() => Err(format!("program {} is not a file", program.display())),
            Ok(_) if !runnable(program) => Err(format!(
                "program {} is not executable (chmod +x it)",
                program.display()
            )),
            Ok(_) => Ok(program.to_path_buf()),
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| runnable(p))
        .ok_or_else(|| format!("program {} is not found on PATH", program.display()))
}

#[async_trait::async_trait]
impl Source for CommandCollector {
    type Config = CommandConfig;

    fn new(name: &str, cfg: &CommandConfig, common: &Common) -> Result<Self, CollectError> {
        Ok(CommandCollector::with(name, cfg, common))
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        self.execute(run).await
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        find_program(&self.cfg.program)
            .map(drop)
            .map_err(|e| CollectError::Config(format!("collector `{}`: {e}", self.name)))
    }
}
