//! What a guest's statements may have left behind in a server session, so
//! that a connection goes back to its pool without a reset round trip when
//! nothing could have changed.
//!
//! Pools are per component (see `state`), so a change this misses (a
//! user-defined function calling `set_config`, `currval` after an insert)
//! is seen only by a later request of the same component, never another's.

/// How one statement may touch the session beyond its own execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEffect {
    /// Plain DML or a query with no session-level side effect.
    None,
    /// `BEGIN` / `START TRANSACTION`: a transaction is open afterwards.
    OpensTransaction,
    /// `COMMIT` / `ROLLBACK` / `END` / `ABORT`: no transaction afterwards.
    ClosesTransaction,
    /// Anything else (SET, temp tables, LISTEN, cursors, session advisory
    /// locks, PREPARE, DO blocks, ...): reset before the next one.
    Changes,
}

/// Statements starting with these words run inside their own statement
/// (or the enclosing transaction) and keep no session state by themselves.
const PLAIN: &[&str] = &[
    "select", "insert", "update", "delete", "with", "values", "table", "merge",
];

/// Words that make an otherwise plain statement change the session.
const SESSION_WORDS: &[&str] = &[
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "temp",
    "temporary",
    "dblink_connect",
    "dblink_connect_u",
    "setseed",
];

/// Classifies one statement by its words (case-insensitive). Anything unrecognised counts as a change: a missed plain
/// statement costs one reset, a missed change would leak.
pub fn effect_of(statement: &str) -> SessionEffect {
    let trimmed = statement.trim_start();
    // A leading comment could hide the real first word, and `U&"..."`
    // identifiers could spell a session function in escapes.
    let starts_plainly =
        trimmed.is_empty() || trimmed.starts_with(|c: char| c.is_ascii_alphabetic() || c == '(');
    if !starts_plainly || trimmed.to_ascii_lowercase().contains("u&") {
        return SessionEffect::Changes;
    }
    let words = words(trimmed);
    let Some(first) = words.first() else {
        return SessionEffect::None;
    };
    match first.as_str() {
        "begin" | "start" => SessionEffect::OpensTransaction,
        "commit" | "end" | "abort" | "rollback" => {
            // `ROLLBACK TO` stays in the transaction, `AND CHAIN` opens
            // another, `ROLLBACK PREPARED` is two-phase commit.
            let rest: Vec<&str> = words[1..].iter().map(String::as_str).collect();
            if rest
                .iter()
                .any(|w| matches!(*w, "to" | "chain" | "prepared"))
            {
                SessionEffect::Changes
            } else {
                SessionEffect::ClosesTransaction
            }
        }
        first if PLAIN.contains(&first) => {
            if words.iter().any(|w| SESSION_WORDS.contains(&w.as_str())) {
                SessionEffect::Changes
            } else {
                SessionEffect::None
            }
        }
        _ => SessionEffect::Changes,
    }
}

/// The lower-cased words of a statement: runs of letters, digits and `_`.
/// Comments and quoted strings are not skipped, so a session word inside
/// one only costs a reset.
fn words(statement: &str) -> Vec<String> {
    statement
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// What one leased connection's statements have done to its session.
#[derive(Debug, Default)]
pub struct SessionState {
    /// A transaction was opened and not (yet) closed.
    in_transaction: bool,
    /// A statement may have changed the session for later ones.
    changed: bool,
    /// A statement was started and did not finish (its future was dropped),
    /// or the connection failed: the protocol state is unknown.
    lost: bool,
}

impl SessionState {
    /// Before a statement runs. Until [`Self::finished`] the connection
    /// counts as lost, so a statement abandoned midway closes it.
    pub fn starting(&mut self, statement: &str) -> SessionEffect {
        self.lost = true;
        effect_of(statement)
    }

    /// After a statement ran; `succeeded` false for a server error (the
    /// connection is fine), while `connection_failed` means it is not.
    pub fn finished(&mut self, effect: SessionEffect, succeeded: bool, connection_failed: bool) {
        self.lost = connection_failed;
        match effect {
            SessionEffect::None => {}
            // Even a failed BEGIN may leave one open (it cannot fail on a
            // healthy connection but for "already in a transaction").
            SessionEffect::OpensTransaction => self.in_transaction = true,
            SessionEffect::ClosesTransaction if succeeded => self.in_transaction = false,
            SessionEffect::ClosesTransaction => self.changed = true,
            SessionEffect::Changes => self.changed = true,
        }
    }

    /// What to do with the connection when the guest lets it go.
    pub fn on_release(&self) -> Release {
        if self.lost {
            Release::Close
        } else if self.changed || self.in_transaction {
            Release::ResetFirst
        } else {
            Release::AsIs
        }
    }
}

/// What happens to a connection the guest released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Straight back to the pool: no round trip.
    AsIs,
    /// Reset the session (one round trip), then back to the pool.
    ResetFirst,
    /// Closed: its protocol state is unknown.
    Close,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_statements_change_nothing() {
        for statement in [
            "SELECT id, name FROM items WHERE id = $1",
            "  select 1",
            "(SELECT 1) UNION (SELECT 2)",
            "INSERT INTO items (name) VALUES ($1) RETURNING id",
            "UPDATE sessions SET revoked = true WHERE id = $1",
            "DELETE FROM items WHERE id = $1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SELECT 'a -- b' FROM t",
            "SELECT pg_advisory_xact_lock(7)",
            "",
        ] {
            assert_eq!(effect_of(statement), SessionEffect::None, "{statement}");
        }
    }

    #[test]
    fn anything_that_can_outlive_the_statement_is_a_change() {
        for statement in [
            "SET search_path = evil",
            "set role postgres",
            "RESET ALL",
            "SELECT set_config('search_path', 'evil', false)",
            "SELECT pg_advisory_lock(1)",
            "select PG_TRY_ADVISORY_LOCK(1)",
            "CREATE TEMP TABLE t (x int)",
            "SELECT * INTO TEMPORARY t FROM items",
            "LISTEN channel",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "PREPARE p AS SELECT 1",
            "DO $$ BEGIN PERFORM set_config('a.b', 'c', false); END $$",
            "ROLLBACK TO SAVEPOINT s",
            "COMMIT AND CHAIN",
            "SAVEPOINT s",
            "DISCARD ALL",
            "-- SELECT\nSET x = 1",
            "/* SELECT */ SET x = 1",
            "SELECT '--', set_config('a.b', 'c', false)",
            "SELECT $$--$$, pg_catalog.set_config('a.b', 'c', false)",
            "SELECT U&\"\\0073et_config\"('a.b', 'c', false)",
            "SELECT setseed(0.5)",
            "vacuum",
        ] {
            assert_eq!(effect_of(statement), SessionEffect::Changes, "{statement}");
        }
    }

    #[test]
    fn transactions_are_tracked_open_and_closed() {
        assert_eq!(effect_of("BEGIN"), SessionEffect::OpensTransaction);
        assert_eq!(
            effect_of("start transaction isolation level serializable"),
            SessionEffect::OpensTransaction
        );
        for close in ["COMMIT", "rollback", "END", "ABORT", "COMMIT WORK"] {
            assert_eq!(
                effect_of(close),
                SessionEffect::ClosesTransaction,
                "{close}"
            );
        }
    }

    fn run(state: &mut SessionState, statement: &str, succeeded: bool) {
        let effect = state.starting(statement);
        state.finished(effect, succeeded, false);
    }

    #[test]
    fn a_release_resets_only_what_needs_it() {
        let mut plain = SessionState::default();
        run(&mut plain, "SELECT 1", true);
        run(&mut plain, "INSERT INTO t VALUES (1)", false);
        assert_eq!(plain.on_release(), Release::AsIs);

        let mut committed = SessionState::default();
        run(&mut committed, "BEGIN", true);
        run(&mut committed, "INSERT INTO t VALUES (1)", true);
        assert_eq!(committed.on_release(), Release::ResetFirst);
        run(&mut committed, "COMMIT", true);
        assert_eq!(committed.on_release(), Release::AsIs);

        let mut left_open = SessionState::default();
        run(&mut left_open, "BEGIN", true);
        run(&mut left_open, "SELECT 1", true);
        assert_eq!(left_open.on_release(), Release::ResetFirst);

        let mut set = SessionState::default();
        run(&mut set, "SET search_path = x", true);
        run(&mut set, "COMMIT", true);
        assert_eq!(set.on_release(), Release::ResetFirst);

        let mut abandoned = SessionState::default();
        let _ = abandoned.starting("SELECT pg_sleep(10)");
        assert_eq!(abandoned.on_release(), Release::Close);

        let mut broken = SessionState::default();
        let effect = broken.starting("SELECT 1");
        broken.finished(effect, false, true);
        assert_eq!(broken.on_release(), Release::Close);
    }
}
