//! What the agent knows of its git source, kept in the store beside the
//! projects: plain data and transitions, no I/O (the syncer hands in
//! results and the time).
//!
//! The point of keeping all of it: a poll that silently stops is the
//! complaint users of other tools have. Here the last fetch (attempt and
//! success), the commit checked out, the error and the failures in a row
//! are in the status, the metrics and the events, and `SourceReady`
//! turns False on the first failure.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::state::{Condition, ConditionStatus};

pub mod reason {
    pub const PENDING: &str = "Pending";
    pub const FETCHED: &str = "Fetched";
}

#[derive(Debug, Clone)]
pub struct SourceStatus {
    /// Without credentials.
    pub url: String,
    /// `--git-ref` as given.
    pub reference: String,
    /// `--git-path` (`""`: the repository's root).
    pub path: String,
    pub interval: Duration,
    /// The checkout folder (the repository's worktree).
    pub checkout: PathBuf,
    /// The revision checked out (`main@sha1:<commit>`): what the
    /// projects' files are read from.
    pub revision: Option<String>,
    pub commit: Option<String>,
    pub commit_time: Option<SystemTime>,
    pub commit_subject: Option<String>,
    /// The last fetch attempt, whatever its outcome.
    pub last_fetch_at: Option<SystemTime>,
    pub last_success_at: Option<SystemTime>,
    /// The commit the remote named at the last successful fetch.
    pub last_fetched_commit: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub next_fetch_at: Option<SystemTime>,
    /// `SourceReady`.
    pub ready: Condition,
}

impl SourceStatus {
    pub fn new(
        url: String,
        reference: String,
        path: String,
        interval: Duration,
        checkout: PathBuf,
        now: SystemTime,
    ) -> Self {
        Self {
            url,
            reference,
            path,
            interval,
            checkout,
            revision: None,
            commit: None,
            commit_time: None,
            commit_subject: None,
            last_fetch_at: None,
            last_success_at: None,
            last_fetched_commit: None,
            last_error: None,
            consecutive_failures: 0,
            next_fetch_at: None,
            ready: Condition::new("SourceReady", reason::PENDING, now),
        }
    }

    /// A commit is now what the worktree holds.
    pub fn checked_out(
        &mut self,
        revision: String,
        commit: String,
        info: Option<(SystemTime, String)>,
    ) {
        self.revision = Some(revision);
        self.commit = Some(commit);
        if let Some((time, subject)) = info {
            self.commit_time = Some(time);
            self.commit_subject = Some(subject);
        }
    }

    /// A fetch succeeded (the remote named `commit`).
    pub fn succeeded(&mut self, commit: String, now: SystemTime) {
        self.last_fetch_at = Some(now);
        self.last_success_at = Some(now);
        self.last_fetched_commit = Some(commit);
        self.last_error = None;
        self.consecutive_failures = 0;
        let message = match &self.revision {
            Some(r) => format!("checked out {r}"),
            None => "fetched".to_owned(),
        };
        self.ready
            .set(ConditionStatus::True, reason::FETCHED, message, 0, now);
    }

    /// A fetch (or its checkout) failed: what runs is kept, and the
    /// condition says why and since when.
    pub fn failed(&mut self, reason: &'static str, message: String, now: SystemTime) {
        self.last_fetch_at = Some(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let kept = match &self.revision {
            Some(r) => format!("; still serving {r}"),
            None => "; nothing checked out yet".to_owned(),
        };
        self.ready.set(
            ConditionStatus::False,
            reason,
            format!("{message}{kept}"),
            0,
            now,
        );
        self.last_error = Some(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(now: SystemTime) -> SourceStatus {
        SourceStatus::new(
            "file:///r".into(),
            "main".into(),
            String::new(),
            Duration::from_secs(60),
            PathBuf::from("/c"),
            now,
        )
    }

    #[test]
    fn failures_count_and_a_success_clears_them() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut s = status(t0);
        assert_eq!(s.ready.status, ConditionStatus::Unknown);

        s.checked_out("main@sha1:aa".into(), "aa".into(), None);
        s.succeeded("aa".into(), t0);
        assert_eq!(s.ready.status, ConditionStatus::True);
        assert_eq!(s.ready.message, "checked out main@sha1:aa");

        let t1 = t0 + Duration::from_secs(60);
        s.failed("FetchFailed", "git ls-remote: gone".into(), t1);
        let t2 = t1 + Duration::from_secs(2);
        s.failed("FetchFailed", "git ls-remote: gone".into(), t2);
        assert_eq!(s.consecutive_failures, 2);
        assert_eq!(s.ready.status, ConditionStatus::False);
        assert_eq!(s.ready.reason, "FetchFailed");
        assert_eq!(
            s.ready.message,
            "git ls-remote: gone; still serving main@sha1:aa"
        );
        // The transition time is the first failure's.
        assert_eq!(s.ready.last_transition_time, t1);
        assert_eq!(s.last_fetch_at, Some(t2));
        assert_eq!(s.last_success_at, Some(t0));

        s.succeeded("aa".into(), t2 + Duration::from_secs(4));
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.last_error, None);
        assert_eq!(s.ready.status, ConditionStatus::True);
    }
}
