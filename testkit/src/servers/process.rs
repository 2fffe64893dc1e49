//! The process harness both servers share: find the program, give it a temp
//! dir and a free port, spawn it with its output in a log file there, probe
//! until it answers, try another port when the chosen one was taken
//! meanwhile, and kill it (SIGKILL) on `kill` and on drop. A restart reuses
//! the port and the dir, so the data survives.

use std::fmt::Debug;
use std::fs::OpenOptions;
use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a started server may take to answer its readiness probe.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one readiness probe may take before it counts as a miss.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Fresh ports tried by `start` when the chosen one was taken meanwhile.
const START_ATTEMPTS: usize = 5;
/// How long `restart` keeps retrying its fixed port while it is still held.
const RESTART_BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between `restart` attempts on a port still held.
const RESTART_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Lines of server log quoted in a start error.
const LOG_TAIL_LINES: usize = 30;

/// What makes one kind of server: its program, its command line for a port
/// and a dir, and how to tell it is ready.
pub(crate) trait Spec: Debug {
    /// The program, looked up on PATH, /usr/sbin and /usr/bin; its log in
    /// the temp dir is `PROGRAM.log`.
    const PROGRAM: &'static str;
    /// Prefix of the temp dir's name.
    const DIR_PREFIX: &'static str;

    /// Adds the arguments that make the program serve on 127.0.0.1:`port`
    /// with its data in `dir` (writing a config file there if it needs one).
    /// Called before every spawn, so a restart gets the same command line.
    fn configure(&self, command: &mut Command, port: u16, dir: &Path) -> io::Result<()>;

    /// One readiness probe: `Ok` once the server on `port` answers.
    fn probe(&self, port: u16) -> impl Future<Output = Result<(), String>>;
}

/// A child process of `S::PROGRAM` on a port of 127.0.0.1 with its own temp
/// dir (removed on drop, after the process is killed).
#[derive(Debug)]
pub(crate) struct ServerProcess<S: Spec> {
    spec: S,
    binary: PathBuf,
    dir: TempDir,
    /// 0 until the first start.
    port: u16,
    /// The running process; `None` before the start and between `kill`
    /// and `restart`.
    child: Option<Child>,
}

/// Why one start attempt failed: a taken port is worth another try.
enum Start {
    PortTaken(io::Error),
    Failed(io::Error),
}

impl<S: Spec> ServerProcess<S> {
    /// Starts the server on a free port and waits until it answers, trying
    /// fresh ports while the chosen one turns out to be taken.
    pub(crate) async fn start(spec: S) -> io::Result<Self> {
        let mut server = ServerProcess {
            spec,
            binary: find_binary(S::PROGRAM)?,
            dir: tempfile::Builder::new().prefix(S::DIR_PREFIX).tempdir()?,
            port: 0,
            child: None,
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(Start::PortTaken(err)) => last_error = Some(err),
                Err(Start::Failed(err)) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    pub(crate) fn spec(&self) -> &S {
        &self.spec
    }

    /// The client port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The process id while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL (no clean shutdown), then waits for the exit. Does nothing
    /// when the server is not running.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Std's `kill` is SIGKILL; an already exited child is fine too.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills a still-running server, then starts it again on the same port
    /// with the same dir and waits until it answers.
    pub(crate) async fn restart(&mut self) -> io::Result<()> {
        self.kill();
        let deadline = Instant::now() + RESTART_BIND_TIMEOUT;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                // The old socket or a stray client may hold the port briefly.
                Err(Start::PortTaken(err)) if Instant::now() >= deadline => return Err(err),
                Err(Start::PortTaken(_)) => tokio::time::sleep(RESTART_RETRY_PAUSE).await,
                Err(Start::Failed(err)) => return Err(err),
            }
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<(), Start> {
        let log = self.dir.path().join(format!("{}.log", S::PROGRAM));
        let mut command = Command::new(&self.binary);
        self.spec
            .configure(&mut command, self.port, self.dir.path())
            .map_err(Start::Failed)?;
        self.child = Some(spawn_logged(command, &log).map_err(Start::Failed)?);
        let result = self.wait_ready(&log).await;
        if result.is_err() {
            self.kill();
        }
        result
    }

    /// Probes until the server answers, it exits, or `READY_TIMEOUT` passes.
    async fn wait_ready(&mut self, log: &Path) -> Result<(), Start> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_probe_error;
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let tail = log_tail(log);
                let port_taken = tail.to_lowercase().contains("address already in use");
                let err = io::Error::other(format!(
                    "{} exited at start ({status}); log tail:\n{tail}",
                    S::PROGRAM
                ));
                return Err(if port_taken {
                    Start::PortTaken(err)
                } else {
                    Start::Failed(err)
                });
            }
            match tokio::time::timeout(PROBE_TIMEOUT, self.spec.probe(self.port)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(err)) => last_probe_error = err,
                Err(_) => last_probe_error = format!("probe timed out after {PROBE_TIMEOUT:?}"),
            }
            if Instant::now() >= deadline {
                return Err(Start::Failed(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} not ready after {READY_TIMEOUT:?} (last probe: {last_probe_error}); \
                         log tail:\n{}",
                        S::PROGRAM,
                        log_tail(log)
                    ),
                )));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }
}

impl<S: Spec> Drop for ServerProcess<S> {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port on 127.0.0.1 that was free a moment ago. Another process may take
/// it before it is used, which is why `start` retries on another port.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 must work on a test machine")
}

/// `name` on PATH, else in /usr/sbin or /usr/bin (not always on PATH).
fn find_binary(name: &str) -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{name} not found on PATH, in /usr/sbin or /usr/bin; \
                     install it with `apt-get install nats-server redis-server`"
                ),
            )
        })
}

/// Spawns `command` with stdout and stderr appended to `log` (a restart
/// appends to the same file).
fn spawn_logged(mut command: Command, log: &Path) -> io::Result<Child> {
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
}

fn log_tail(log: &Path) -> String {
    let text =
        std::fs::read_to_string(log).unwrap_or_else(|err| format!("<log unreadable: {err}>"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
