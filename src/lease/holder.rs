//! Who holds the lease, as its owner string says, and when a holder is
//! provably gone (SPEC §2): only then may an instance take an unexpired
//! lease, and only from an earlier process of itself.
//!
//! The owner string is `<INSTANCE_ID> (host <host>, pid <pid>@<pid
//! namespace>, <8 hex>)`. A holder is provably gone when it has this
//! process's `INSTANCE_ID` and host and either
//! - it ran in this process's pid namespace and its pid runs no process
//!   any more (`kill(pid, 0)` says so), or
//! - its pid is this process's own in another pid namespace: a container
//!   restarted (the same pod's host name, pid 1 again). A twin container
//!   that shares the host name and the pid would look the same, so this
//!   case is only provable after the holder missed a renewal (see
//!   [`Verdict::GoneIfNotRenewed`]).
//!
//! Anything else (another instance, another host, a live process, an owner
//! string this code cannot read) is a live holder: the newcomer waits for
//! the lease to be released or to expire.

/// This process's identity in the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// `INSTANCE_ID`.
    pub instance: String,
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The pid namespace (its inode number; 0 when unknown).
    pub pid_ns: u64,
}

/// What a newcomer may do about a lease another process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The holder is provably gone: take the lease back now.
    Gone,
    /// The holder looks like this process before a container restart:
    /// take the lease back if the holder does not renew it within a
    /// renewal interval.
    GoneIfNotRenewed,
    /// The holder may be alive: wait.
    Alive,
}

impl Holder {
    /// This process, as instance `instance`.
    pub fn this_process(instance: &str) -> Holder {
        Holder {
            instance: instance.to_owned(),
            host: crate::config::host_name(),
            pid: std::process::id(),
            pid_ns: pid_namespace(),
        }
    }

    /// The owner string, with `nonce` telling this process's leases from
    /// an earlier process's with the same pid.
    pub fn owner(&self, nonce: &str) -> String {
        format!(
            "{} (host {}, pid {}@{}, {nonce})",
            self.instance, self.host, self.pid, self.pid_ns
        )
    }

    /// Reads an owner string made by [`Holder::owner`]; `None` for any
    /// other (an older version's, a hand-written one).
    pub fn parse(owner: &str) -> Option<Holder> {
        let (instance, rest) = owner.rsplit_once(" (host ")?;
        let rest = rest.strip_suffix(')')?;
        let (host, rest) = rest.rsplit_once(", pid ")?;
        let (process, _nonce) = rest.split_once(", ")?;
        let (pid, pid_ns) = process.split_once('@')?;
        Some(Holder {
            instance: instance.to_owned(),
            host: host.to_owned(),
            pid: pid.parse().ok()?,
            pid_ns: pid_ns.parse().ok()?,
        })
    }

    /// What this process may do about the lease held by `owner`;
    /// `running(pid)` says whether a process of this namespace has that pid.
    pub fn judge(&self, owner: &str, running: impl Fn(u32) -> bool) -> Verdict {
        let Some(holder) = Holder::parse(owner) else {
            return Verdict::Alive;
        };
        if holder.instance != self.instance || holder.host != self.host {
            return Verdict::Alive;
        }
        let same_namespace = holder.pid_ns == self.pid_ns && self.pid_ns != 0;
        match (same_namespace, holder.pid == self.pid) {
            // This process has the pid now: the earlier one has ended.
            (true, true) => Verdict::Gone,
            (true, false) if !running(holder.pid) => Verdict::Gone,
            (false, true) => Verdict::GoneIfNotRenewed,
            _ => Verdict::Alive,
        }
    }
}

/// Whether a process with `pid` runs in this pid namespace (a process of
/// another user counts as running).
pub fn running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// This process's pid namespace, the inode of `/proc/self/ns/pid`
/// (`pid:[4026531836]`); 0 where it cannot be read.
fn pid_namespace() -> u64 {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|link| {
            let text = link.to_string_lossy().into_owned();
            text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Holder {
        Holder {
            instance: "importer".into(),
            host: "node-1".into(),
            pid: 42,
            pid_ns: 7,
        }
    }

    fn other(change: impl FnOnce(&mut Holder)) -> String {
        let mut h = me();
        change(&mut h);
        h.owner("0badcafe")
    }

    #[test]
    fn owner_strings_round_trip() {
        let owner = me().owner("0badcafe");
        assert_eq!(owner, "importer (host node-1, pid 42@7, 0badcafe)");
        assert_eq!(Holder::parse(&owner), Some(me()));
        let odd = Holder {
            instance: "a (b)".into(),
            ..me()
        };
        assert_eq!(Holder::parse(&odd.owner("x")), Some(odd));
        assert_eq!(Holder::parse("importer (pid 42, 0badcafe)"), None);
    }

    #[test]
    fn only_an_earlier_process_of_this_instance_and_host_can_be_gone() {
        let dead = |_| false;
        let alive = |_| true;
        // Killed earlier process on this host, same namespace.
        assert_eq!(me().judge(&other(|h| h.pid = 40), dead), Verdict::Gone);
        // ... unless a process still has that pid.
        assert_eq!(me().judge(&other(|h| h.pid = 40), alive), Verdict::Alive);
        // A restarted container: the same pid in a new namespace.
        assert_eq!(
            me().judge(&other(|h| h.pid_ns = 8), dead),
            Verdict::GoneIfNotRenewed
        );
        // Another namespace and another pid: nothing can be known.
        assert_eq!(
            me().judge(
                &other(|h| {
                    h.pid_ns = 8;
                    h.pid = 40
                }),
                dead
            ),
            Verdict::Alive
        );
        // Another instance or host, however dead it looks.
        assert_eq!(
            me().judge(&other(|h| h.instance = "x".into()), dead),
            Verdict::Alive
        );
        assert_eq!(
            me().judge(&other(|h| h.host = "node-2".into()), dead),
            Verdict::Alive
        );
        // An owner string of an older version.
        assert_eq!(
            me().judge("importer (pid 40, 0badcafe)", dead),
            Verdict::Alive
        );
        // Unknown namespaces prove nothing.
        let unknown = Holder { pid_ns: 0, ..me() };
        assert_eq!(
            unknown.judge(
                &other(|h| {
                    h.pid_ns = 0;
                    h.pid = 40
                }),
                dead
            ),
            Verdict::Alive
        );
    }

    #[test]
    fn this_process_is_running_and_an_ended_one_is_not() {
        assert!(running(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        assert!(!running(child.id()), "reaped: its pid is free");
    }
}
