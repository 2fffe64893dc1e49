//! The command line's own artefacts: `--help` of every command with its
//! examples and exit codes, `completions <shell>` and `man`. None needs a
//! configuration or a server. The commands are discovered from the
//! binary's `--help`, so a new command is covered without editing this file.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sis-importer");

/// Runs the binary with `args`, with a configuration file that does not
/// exist: these commands must not read one.
fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SIS_IMPORTER_CONFIG", "/nonexistent/sis-importer.toml")
        .env_remove("SIS_API_URL")
        .output()
        .unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The commands `--help` of `path` lists (two spaces, a name, its about),
/// clap's own `help` left out.
fn listed_commands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = stdout_of(&args);
    let Some((_, list)) = help.split_once("Commands:\n") else {
        return Vec::new();
    };
    list.lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path below `sis-importer` (`once`, `dead-letters
/// replay`), parents included.
fn all_commands() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        for name in listed_commands(&words) {
            let mut sub = path.clone();
            sub.push(name);
            out.push(sub.clone());
            todo.push(sub);
        }
    }
    out.sort();
    out
}

#[test]
fn every_command_is_discovered() {
    let commands: BTreeSet<String> = all_commands().iter().map(|p| p.join(" ")).collect();
    for expected in [
        "run",
        "once",
        "check",
        "status",
        "reset",
        "forbidden clear",
        "dead-letters replay",
        "completions",
        "man",
    ] {
        assert!(commands.contains(expected), "{expected}: {commands:?}");
    }
}

#[test]
fn help_of_every_command_shows_examples_and_exit_codes() {
    let mut paths = all_commands();
    paths.push(Vec::new());
    for path in paths {
        for flag in ["--help", "-h"] {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push(flag);
            let help = stdout_of(&args);
            let (_, examples) = help
                .split_once("\nExamples:\n  ")
                .unwrap_or_else(|| panic!("{args:?} shows no examples:\n{help}"));
            assert!(
                examples.contains("sis-importer"),
                "{args:?}: examples run nothing:\n{help}"
            );
            let (_, codes) = help
                .split_once("\nExit codes:\n")
                .unwrap_or_else(|| panic!("{args:?} shows no exit codes:\n{help}"));
            assert!(
                codes
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with("0 "),
                "{args:?}: exit codes start with 0:\n{codes}"
            );
        }
    }
}

#[test]
fn completions_of_every_shell_offer_every_command() {
    let names: BTreeSet<String> = all_commands().into_iter().flatten().collect();
    // How each script offers a command as a candidate, `NAME` standing for
    // it (bash is run for real below).
    let offers = [
        ("bash", " NAME "),
        ("zsh", "'NAME:"),
        ("fish", "-a \"NAME\""),
        ("elvish", "cand NAME "),
        ("powershell", "CompletionResult]::new('NAME'"),
    ];
    for (shell, offer) in offers {
        let script = stdout_of(&["completions", shell]);
        for name in &names {
            let candidate = offer.replace("NAME", name);
            assert!(script.contains(&candidate), "{shell}: no {candidate}");
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("powershell"));
}

/// Asks the bash completion what follows `words` (the last one being
/// typed), as bash does on TAB.
fn bash_completes(script: &str, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\nCOMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; \
         COMP_POINT=${{#COMP_LINE}}\n_sis__importer sis-importer '{current}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cword = words.len() - 1,
        line = words.join(" "),
        current = words[words.len() - 1],
        previous = words[words.len() - 2],
    );
    let mut bash = Command::new("bash")
        .arg("--norc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    bash.stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let out = bash.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_accepts_the_bash_script_and_it_completes_the_commands() {
    let script = stdout_of(&["completions", "bash"]);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(script.as_bytes()).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(file.path())
        .output()
        .expect("bash runs");
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let top = bash_completes(&script, &["sis-importer", ""]);
    for path in all_commands().iter().filter(|p| p.len() == 1) {
        assert!(top.contains(&path[0]), "no {}: {top:?}", path[0]);
    }
    let letters = bash_completes(&script, &["sis-importer", "dead-letters", ""]);
    for name in ["list", "replay", "clear"] {
        assert!(letters.contains(&name.to_owned()), "{letters:?}");
    }
    let shells = bash_completes(&script, &["sis-importer", "completions", "z"]);
    assert_eq!(shells, ["zsh"]);
    let replay = bash_completes(&script, &["sis-importer", "dead-letters", "replay", "--a"]);
    assert_eq!(replay, ["--all"]);
}

#[test]
fn man_page_lists_every_command_and_each_command_has_a_page() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH sis-importer 1"), "{page}");
    for path in all_commands() {
        if path.len() == 1 {
            let reference = format!("sis\\-importer\\-{}(1)", path[0].replace('-', "\\-"));
            assert!(page.contains(&reference), "no {reference} in the page");
        }
        let args: Vec<&str> = std::iter::once("man")
            .chain(path.iter().map(String::as_str))
            .collect();
        let page = stdout_of(&args);
        let title = format!(".TH sis-importer-{} 1", path.join("-"));
        assert!(page.contains(&title), "{args:?}: no {title}:\n{page}");
        for section in [".SH SYNOPSIS", ".SH EXAMPLES", ".SH \"EXIT STATUS\""] {
            assert!(page.contains(section), "{args:?}: no {section}");
        }
    }
}

#[test]
fn man_pages_render_without_warnings() {
    if Command::new("groff").arg("--version").output().is_err() {
        eprintln!("skipped: groff is not installed");
        return;
    }
    for args in [
        &["man"][..],
        &["man", "once"],
        &["man", "dead-letters", "replay"],
    ] {
        let page = stdout_of(args);
        let mut groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        groff
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let out = groff.wait_with_output().unwrap();
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.is_empty(),
            "{args:?}: {warnings}"
        );
    }
}

#[test]
fn man_of_an_unknown_command_is_a_usage_error() {
    let out = run(&["man", "dead-letters", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("no command `dead-letters nope`"), "{error}");
}
