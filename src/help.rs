//! Examples and exit codes of each `sis-importer` command (part of the
//! binary, `main.rs`, not of the library). One table feeds both the
//! `--help` text (clap's `after_help`) and the manual pages of
//! `sis-importer man`, so the two cannot tell different stories. The exit
//! codes are those of SPEC §8 and docs/operating.md's table.

use std::io::{self, Write};

use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

/// What `--help` and the manual page add to a command's own description.
pub struct Help {
    /// The command's path below `sis-importer`, e.g. `dead-letters replay`;
    /// empty for the program itself.
    pub path: &'static str,
    /// Command lines to copy, each with what it does.
    pub examples: &'static [(&'static str, &'static str)],
    /// Each exit code and when the command ends with it.
    pub exit_codes: &'static [(u8, &'static str)],
}

const BAD_START: &str = "bad arguments or configuration, or Redis unreachable; one line on \
    stderr names the cause (`sis-importer: …`)";
const UNKNOWN_OR_REDIS: &str = "an unknown service id (the message names the one likely \
    meant), bad arguments or configuration, or Redis unreachable";
const SECOND_SIGNAL: &str = "a second SIGTERM or SIGINT while the first one was draining \
    (nothing unacknowledged is committed)";

/// Every command's examples and exit codes; `help_has_a_row_per_command`
/// (main.rs) fails when a command is missing.
pub const HELP: &[Help] = &[
    Help {
        path: "",
        examples: &[
            ("sis-importer check", "validate the configuration and reach NATS, Redis and Sisu"),
            ("sis-importer --config /etc/sis-importer/importer.toml run", "the daemon, settings from a file (the environment overrides it)"),
            ("sis-importer once --service PERSON", "import one service now and exit"),
            ("sis-importer once --help", "a command's options, examples and exit codes"),
            ("man -l <(sis-importer man)", "this page as a manual page; `sis-importer man once` for a command's"),
        ],
        exit_codes: &[
            (0, "success"),
            (1, "`once`: a service failed, was forbidden or did not finish; `check`: a check failed; `dead-letters replay`: a letter was not delivered"),
            (2, "bad arguments or configuration, NATS or Redis unreachable at start, an unknown service id; nothing was fetched"),
            (130, SECOND_SIGNAL),
        ],
    },
    Help {
        path: "run",
        examples: &[
            ("SIS_API_URL=https://sisu.example.org sis-importer run", "import at start and then at the top of every hour (CRON `0 0 * * * *`)"),
            ("CRON='0 30 2 * * *' sis-importer --config importer.toml run", "import every night at 02:30 in TZ_NAME"),
        ],
        exit_codes: &[
            (0, "stopped by SIGTERM or SIGINT, after waiting up to shutdown_grace_secs for outstanding acknowledgements"),
            (2, "bad arguments or configuration, NATS or Redis unreachable at start or refusing the credentials, PORT already in use; nothing was fetched"),
            (130, SECOND_SIGNAL),
        ],
    },
    Help {
        path: "once",
        examples: &[
            ("sis-importer once", "every service of SERVICES, or every enabled one"),
            ("sis-importer once --service PERSON --service ORGANISATION", "these two, in catalogue order"),
            ("sis-importer once --progress never 2> once.log", "no progress line; the logs to a file"),
        ],
        exit_codes: &[
            (0, "every selected service finished (`ok`, or `skipped` as a one-time service fetched before), or a signal stopped the run"),
            (1, "a service failed, was forbidden (403) or did not finish, or POST_UPDATE could not be published"),
            (2, "bad arguments or configuration, an unknown service id, NATS or Redis unreachable at start or refusing the credentials; nothing was fetched"),
            (130, SECOND_SIGNAL),
        ],
    },
    Help {
        path: "check",
        examples: &[
            ("sis-importer check", "one line per check: config, nats, redis, lease, consumers, then sisu per service"),
            ("SERVICES=PERSON sis-importer --config importer.toml check", "reach Sisu for one service only"),
        ],
        exit_codes: &[
            (0, "every check passed (`warn` lines included)"),
            (1, "a check failed (`FAIL` line), the configuration included"),
            (2, "bad arguments"),
        ],
    },
    Help {
        path: "status",
        examples: &[
            ("sis-importer status", "a header (run under way, next CRON tick) and a row per service"),
            ("sis-importer status --json", "the rows as a JSON array; its `ordinal` is what `reset --to` takes"),
        ],
        exit_codes: &[(0, "the status was printed"), (2, BAD_START)],
    },
    Help {
        path: "forbidden",
        examples: &[("sis-importer forbidden clear", "clear every forbidden mark")],
        exit_codes: &[(0, "done"), (2, UNKNOWN_OR_REDIS)],
    },
    Help {
        path: "forbidden clear",
        examples: &[
            ("sis-importer forbidden clear PERSON", "the next run tries PERSON again"),
            ("sis-importer forbidden clear", "clear the mark of every forbidden service"),
        ],
        exit_codes: &[(0, "cleared, or there was no mark to clear"), (2, UNKNOWN_OR_REDIS)],
    },
    Help {
        path: "reset",
        examples: &[
            ("sis-importer reset PERSON", "the next run imports PERSON from 0"),
            ("sis-importer reset PERSON --to 250004980", "the next run fetches what comes after this ordinal"),
            ("sis-importer reset --all --yes", "every service, without asking"),
        ],
        exit_codes: &[
            (0, "every named service was reset"),
            (2, "an unknown service id, a run holding the import lease (without --force), --all neither confirmed nor --yes, bad arguments or configuration, or Redis unreachable"),
        ],
    },
    Help {
        path: "dead-letters",
        examples: &[
            ("sis-importer dead-letters list", "every service's dead letters"),
            ("sis-importer dead-letters replay ATTAINMENT --all", "send a service's letters again"),
        ],
        exit_codes: &[
            (0, "done"),
            (1, "`replay`: a chosen letter was not delivered"),
            (2, UNKNOWN_OR_REDIS),
        ],
    },
    Help {
        path: "dead-letters list",
        examples: &[
            ("sis-importer dead-letters list", "every service that has dead letters"),
            ("sis-importer dead-letters list ATTAINMENT --json --limit 10", "the newest ten of one service, as JSON"),
        ],
        exit_codes: &[(0, "the letters were printed"), (2, UNKNOWN_OR_REDIS)],
    },
    Help {
        path: "dead-letters replay",
        examples: &[
            ("sis-importer dead-letters replay ATTAINMENT --id hy-att-123", "every stored version of one identity"),
            ("sis-importer dead-letters replay ATTAINMENT --all", "every letter of the service"),
        ],
        exit_codes: &[
            (0, "every chosen letter was delivered, or a signal stopped the wait for the import lease"),
            (1, "a chosen letter failed again or has no entity to send, or the replay did not complete"),
            (2, "an unknown service id, an --id no letter of the service has, bad arguments or configuration, NATS or Redis unreachable"),
            (130, SECOND_SIGNAL),
        ],
    },
    Help {
        path: "dead-letters clear",
        examples: &[
            ("sis-importer dead-letters clear ATTAINMENT --id hy-att-123", "remove one identity's letters"),
            ("sis-importer dead-letters clear ATTAINMENT", "remove all of the service's letters"),
        ],
        exit_codes: &[(0, "removed (possibly none)"), (2, UNKNOWN_OR_REDIS)],
    },
    Help {
        path: "completions",
        examples: &[
            ("sis-importer completions bash > /etc/bash_completion.d/sis-importer", "bash, for every user"),
            ("sis-importer completions zsh > ~/.zfunc/_sis-importer", "zsh (with ~/.zfunc in fpath)"),
            ("sis-importer completions fish > ~/.config/fish/completions/sis-importer.fish", "fish"),
        ],
        exit_codes: &[(0, "the script was printed"), (2, "an unknown shell or bad arguments")],
    },
    Help {
        path: "man",
        examples: &[
            ("man -l <(sis-importer man)", "read the program's page"),
            ("sis-importer man dead-letters replay | man -l -", "read one command's page"),
            ("sis-importer man > /usr/local/share/man/man1/sis-importer.1", "install the program's page"),
        ],
        exit_codes: &[(0, "the page was printed"), (2, "an unknown command or bad arguments")],
    },
];

/// The row of the command at `path` (`""`, `once`, `dead-letters replay`).
pub fn of(path: &str) -> Option<&'static Help> {
    HELP.iter().find(|help| help.path == path)
}

/// The text clap shows after a command's options in `--help` (and `-h`):
/// its examples and exit codes. Empty for a command without a row.
pub fn after_help(path: &str) -> String {
    let Some(help) = of(path) else {
        return String::new();
    };
    let mut text = String::from("Examples:\n");
    for (command, what) in help.examples {
        text.push_str(&format!("  {command}\n      {what}\n"));
    }
    text.push_str("\nExit codes:\n");
    for (code, when) in help.exit_codes {
        text.push_str(&format!("  {code:<5}{when}\n"));
    }
    text
}

/// Writes the manual page (roff) of `command`, whose row is at `path`:
/// clap_mangen's sections from the command's definition, then EXAMPLES
/// and EXIT STATUS from [`HELP`] (as tagged paragraphs, which the plain
/// `after_help` text would lose in a filled paragraph).
pub fn man_page(command: clap::Command, path: &str, out: &mut dyn Write) -> io::Result<()> {
    let has_subcommands = command.has_subcommands();
    let has_version = command.get_version().is_some();
    // A command's page names the program's version too, not only the
    // program's own page.
    let man = Man::new(command).source(format!("sis-importer {}", env!("CARGO_PKG_VERSION")));
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    if has_subcommands {
        man.render_subcommands_section(out)?;
    }
    if let Some(help) = of(path) {
        let mut roff = Roff::default();
        roff.control("SH", ["EXAMPLES"]);
        for (command, what) in help.examples {
            roff.control("TP", [])
                .text([bold(*command)])
                .text([roman(*what)]);
        }
        roff.control("SH", ["EXIT STATUS"]);
        for (code, when) in help.exit_codes {
            roff.control("TP", [])
                .text([bold(code.to_string())])
                .text([roman(*when)]);
        }
        roff.to_writer(out)?;
    }
    if has_version {
        man.render_version_section(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command below `sis-importer` by its path (`dead-letters
    /// replay`), the program itself as `""`; clap's `help` left out.
    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(path: String, command: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
            out.push((path.clone(), command.clone()));
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                let sub_path = format!("{path} {}", sub.get_name()).trim().to_owned();
                walk(sub_path, sub, out);
            }
        }
        let mut out = Vec::new();
        walk(String::new(), &crate::Cli::command(), &mut out);
        out
    }

    #[test]
    fn every_command_has_a_row_and_shows_its_own_in_its_help() {
        let commands = commands();
        assert!(commands.len() > 10, "{} commands", commands.len());
        for (path, command) in &commands {
            let row = of(path).unwrap_or_else(|| panic!("no row in HELP for `{path}`"));
            assert!(!row.examples.is_empty(), "`{path}` has no example");
            assert!(
                row.exit_codes.iter().any(|(code, _)| *code == 0),
                "`{path}` does not say when it exits 0"
            );
            assert_eq!(
                command.get_after_help().map(ToString::to_string),
                Some(after_help(path)),
                "`{path}` shows no row, or another command's"
            );
        }
        for row in HELP {
            assert!(
                commands.iter().any(|(path, _)| path == row.path),
                "the row `{}` names no command",
                row.path
            );
        }
    }

    #[test]
    fn examples_run_commands_that_exist() {
        // An example's first words after `sis-importer` and its global
        // option must be a command path, so a renamed command fails here.
        let paths: Vec<String> = commands().into_iter().map(|(path, _)| path).collect();
        for help in HELP {
            for (line, _) in help.examples {
                let Some(after) = line.split("sis-importer ").nth(1) else {
                    continue;
                };
                let words: Vec<&str> = after
                    .split_whitespace()
                    .skip_while(|w| w.starts_with("--config") || w.ends_with(".toml"))
                    .take_while(|w| !w.starts_with('-') && !w.starts_with('|'))
                    .map(|w| w.trim_end_matches(')'))
                    .collect();
                let known = (1..=words.len())
                    .rev()
                    .any(|n| paths.contains(&words[..n].join(" ")));
                assert!(known, "example `{line}` runs no known command");
            }
        }
    }
}
