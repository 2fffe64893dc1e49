//! The `Dockerfile`. No container engine runs here (a docker client
//! without a daemon at most), so the image is never built: its stages are
//! read instead, and the binary runs the way the runtime stage lays it out
//! (root-owned, mode 0755, in `usr/local/bin`) as the image's user, with
//! the image's `HEALTHCHECK` command against its admin port.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sis_importer::config::defaults;

use crate::common::{bare_command, terminate, Env, BIN};
use crate::support::{read, run_ok, tool};

/// One instruction: its keyword (upper case) and the rest of its line,
/// continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

/// The Dockerfile's stages, each a list of instructions starting with its
/// `FROM`; the global `ARG`s before the first `FROM` come first, as a
/// stage of their own.
fn stages(text: &str) -> Vec<Vec<Instruction>> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    logical.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    let mut stages = vec![Vec::new()];
    for line in logical {
        let (keyword, args) = line
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().unwrap().push(Instruction {
            keyword,
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        });
    }
    stages
}

/// The arguments of the stage's last `keyword` instruction.
fn last<'a>(stage: &'a [Instruction], keyword: &str) -> &'a str {
    stage
        .iter()
        .rev()
        .find(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .unwrap_or_else(|| panic!("no {keyword} in {stage:?}"))
}

/// An exec-form (JSON array) argument list.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not exec form: {args}: {e}"))
}

/// The `HEALTHCHECK`'s command, in exec form.
fn healthcheck_command(runtime: &[Instruction]) -> Vec<String> {
    let args = last(runtime, "HEALTHCHECK");
    let (_, command) = args
        .split_once("CMD ")
        .unwrap_or_else(|| panic!("HEALTHCHECK without CMD: {args}"));
    exec_form(command)
}

/// The image's user and group ids from `USER uid:gid`.
fn image_user(runtime: &[Instruction]) -> (u32, u32) {
    let user = last(runtime, "USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let id = |s: &str| {
        s.parse()
            .unwrap_or_else(|_| panic!("USER {user}: numeric ids, so runAsNonRoot can check them"))
    };
    (id(uid), id(gid))
}

#[test]
fn the_dockerfile_builds_locked_and_runs_the_daemon_as_a_non_root_user() {
    let text = read("Dockerfile");
    let stages = stages(&text);
    let (globals, build, runtime) = (&stages[0], &stages[1], stages.last().unwrap());
    assert!(stages.len() >= 3, "a build stage and a runtime stage");

    // The toolchain is the one Cargo.toml promises to build with.
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let rust_version = manifest["package"]["rust-version"].as_str().unwrap();
    assert_eq!(last(globals, "ARG"), format!("RUST_VERSION={rust_version}"));
    assert!(last(build, "FROM").starts_with("rust:${RUST_VERSION}-"));
    let build_step = last(build, "RUN");
    assert!(
        build_step.contains("cargo build --release --locked --bin sis-importer"),
        "{build_step}"
    );

    // The runtime stage: a slim Debian, the binary, a user that is not root.
    let base = last(runtime, "FROM");
    assert!(
        base.starts_with("debian:") && base.ends_with("-slim"),
        "{base}"
    );
    assert!(
        last(runtime, "COPY").ends_with(" /usr/local/bin/sis-importer"),
        "{runtime:?}"
    );
    let (uid, gid) = image_user(runtime);
    assert!(uid != 0 && gid != 0, "the image runs as root");
    let mut command = exec_form(last(runtime, "ENTRYPOINT"));
    command.extend(exec_form(last(runtime, "CMD")));
    assert_eq!(command, ["sis-importer", "run"]);
    assert_eq!(last(runtime, "EXPOSE"), defaults::PORT.to_string());
    let health = healthcheck_command(runtime).join(" ");
    assert!(health.contains("/healthz"), "{health}");
    assert!(
        health.contains(&format!("${{PORT:-{}}}", defaults::PORT)),
        "the health check follows PORT: {health}"
    );

    // The build context leaves out the gigabytes of build output.
    let dockerignore = read(".dockerignore");
    let ignored: Vec<&str> = dockerignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        ignored.iter().any(|l| l.trim_matches('/') == "target"),
        "{ignored:?}"
    );
}

/// The runtime stage's layout: the binary, root-owned with mode 0755, in
/// `<root>/usr/local/bin`, every directory on the way readable by all.
fn lay_out_image(root: &Path) -> PathBuf {
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for dir in [root, &root.join("usr"), &root.join("usr/local"), &bin] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let exe = bin.join("sis-importer");
    std::fs::copy(BIN, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

/// `program args…` as `uid:gid` with no supplementary groups.
fn as_user(setpriv: &Path, (uid, gid): (u32, u32), program: &str, args: &[&str]) -> Command {
    let mut cmd = bare_command(setpriv.to_str().unwrap(), &[]);
    cmd.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
        "--",
        program,
    ])
    .args(args);
    cmd
}

/// A port nothing listens on at the moment.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The effective uid of process `pid`.
fn effective_uid(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_as_the_images_user_and_its_healthcheck_follows_the_daemon() {
    let Some(setpriv) = tool("setpriv", "running the binary as the image's user") else {
        return;
    };
    // setpriv changes ids only as root.
    if effective_uid(std::process::id()) != 0 {
        eprintln!("SKIPPED: running the binary as the image's user: needs root for setpriv");
        return;
    }
    let runtime = stages(&read("Dockerfile")).pop().unwrap();
    let user = image_user(&runtime);
    let health = healthcheck_command(&runtime);
    let root = tempfile::tempdir().unwrap();
    let exe = lay_out_image(root.path());
    let exe = exe.to_str().unwrap();

    let version = run_ok(&mut as_user(&setpriv, user, exe, &["--version"]));
    assert!(version.starts_with("sis-importer "), "{version}");
    let help = run_ok(&mut as_user(&setpriv, user, exe, &["check", "--help"]));
    assert!(help.contains("Usage:"), "{help}");

    let env = Env::start(50).await;
    let port = free_port();
    let healthcheck = || {
        let (program, args) = health.split_first().unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        as_user(&setpriv, user, program, &args)
            .env("PORT", port.to_string())
            .output()
            .unwrap()
            .status
    };
    let daemon = as_user(&setpriv, user, exe, &["run"])
        .envs(env.env_vars())
        .env("SERVICES", "PERSON")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        effective_uid(daemon.id()),
        user.0,
        "the daemon runs as the image's user"
    );
    let healthy = healthcheck();
    let (code, logs) = tokio::task::spawn_blocking(move || terminate(daemon))
        .await
        .unwrap();
    assert!(
        healthy.success(),
        "HEALTHCHECK fails on a live daemon: {healthy}: {logs}"
    );
    assert_eq!(code, Some(0), "SIGTERM ends the daemon with 0: {logs}");
    assert!(
        !healthcheck().success(),
        "HEALTHCHECK passes with no daemon listening"
    );
}
