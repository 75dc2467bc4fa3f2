//! A session's identity, and the session a thread is working on for its log lines.
//!
//! Code that works on one session holds a [`LogScope`] while it does
//! (`let _scope = id.log_scope();`): every log line written on that thread meanwhile, str0m's
//! included, is about that session, and the daemon's log formatter prefixes it with the id
//! ([`current`]). The scope is a guard rather than a closure, so the code inside borrows
//! whatever it needs as usual; scopes nest, each restoring the one before when it drops.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// A session's identity, as the HTTP API and the recording's file name show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    /// A session id from its numeric form (tests and replays use small numbers).
    pub const fn from_u128(v: u128) -> Self {
        SessionId(uuid::Uuid::from_u128(v))
    }

    /// A session id from a uuid the caller generated.
    pub const fn from_uuid(v: uuid::Uuid) -> Self {
        SessionId(v)
    }

    /// The numeric form.
    pub const fn as_u128(self) -> u128 {
        self.0.as_u128()
    }

    /// Which of `n` shards (recorder workers) this session belongs to: stable for the
    /// session, spread evenly over random (v4) ids, and far cheaper than a hasher.
    pub fn shard(self, n: usize) -> usize {
        let v = self.0.as_u128();
        ((v as u64 ^ (v >> 64) as u64) % n.max(1) as u64) as usize
    }

    /// Parses the textual form used in URLs.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::try_parse(s).ok().map(SessionId)
    }

    /// Makes this the session this thread's log lines are about until the guard drops.
    #[must_use = "the scope ends when the guard is dropped"]
    pub fn log_scope(self) -> LogScope {
        LogScope { previous: CURRENT.with(|c| c.replace(Some(self))), _thread: PhantomData }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

thread_local! {
    static CURRENT: Cell<Option<SessionId>> = const { Cell::new(None) };
}

/// The session this thread's log lines are about, if any (see [`SessionId::log_scope`]).
pub fn current() -> Option<SessionId> {
    CURRENT.with(Cell::get)
}

/// While alive, this thread works on one session; see [`SessionId::log_scope`]. Not `Send`:
/// it restores a thread-local of the thread that made it.
pub struct LogScope {
    previous: Option<SessionId>,
    _thread: PhantomData<*const ()>,
}

impl Drop for LogScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_end_with_their_guard() {
        let (a, b) = (SessionId::from_u128(7), SessionId::from_u128(8));
        assert_eq!(current(), None);
        {
            let _a = a.log_scope();
            assert_eq!(current(), Some(a));
            {
                let _b = b.log_scope();
                assert_eq!(current(), Some(b));
            }
            assert_eq!(current(), Some(a));
        }
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panic_inside_a_scope_does_not_leave_it_set() {
        let id = SessionId::from_u128(9);
        let r = std::panic::catch_unwind(|| {
            let _scope = id.log_scope();
            panic!("inside");
        });
        assert!(r.is_err());
        assert_eq!(current(), None, "the scope outlived the panic");
    }
}
