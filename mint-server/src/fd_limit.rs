//! The open-file limit: every connection costs a file descriptor, and a
//! mint that runs out of them cannot accept a pool. Distributions start
//! daemons with a soft limit of 1024 and a much higher hard limit; the
//! mint raises its soft limit to the hard one at start, as servers do.

/// The soft limit before and after raising it, and the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit (the most the soft limit can be raised to).
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit.
#[cfg(unix)]
pub fn raise() -> std::io::Result<OpenFileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(OpenFileLimit {
        before,
        now: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// Elsewhere the limit is left as it is.
#[cfg(not(unix))]
pub fn raise() -> std::io::Result<OpenFileLimit> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "open-file limits are managed by the platform",
    ))
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn raising_reaches_the_hard_limit() {
        let limit = super::raise().unwrap();
        assert_eq!(limit.now, limit.hard);
        assert!(limit.now >= limit.before);
        // A second call finds nothing left to raise.
        let again = super::raise().unwrap();
        assert_eq!(again.before, limit.now);
    }
}
