//! What a guest's SQL may do to the file system: nothing beyond its own
//! database. A SQLite authorizer (as Spin installs one) refuses, while each
//! statement is prepared: `ATTACH` of a file (in-memory `""` and `:memory:`
//! stay allowed, and files too where the runtime config says
//! `allow_attach_file = true`), `VACUUM INTO` (which attaches its target),
//! `load_extension`, and setting any PRAGMA outside a short list of harmless
//! ones; the host sets `journal_mode` itself, and such PRAGMAs may be read but
//! not set. Connections open without URI filenames, so `file:` names are
//! plain paths.

use std::cell::RefCell;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// PRAGMAs a guest may also set: per-connection behaviour, the schema's own
/// data, and checks; none of them names, creates or syncs a file.
const SETTABLE_PRAGMAS: &[&str] = &[
    "analysis_limit",
    "application_id",
    "automatic_index",
    "busy_timeout",
    "cache_size",
    "case_sensitive_like",
    "cell_size_check",
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "optimize",
    "query_only",
    "quick_check",
    "recursive_triggers",
    "reverse_unordered_selects",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// PRAGMAs a guest may read but not set: they touch the file, the journal or
/// the process (`journal_mode`, `synchronous`, `mmap_size`, ...).
const READABLE_PRAGMAS: &[&str] = &[
    "auto_vacuum",
    "collation_list",
    "compile_options",
    "data_version",
    "encoding",
    "freelist_count",
    "function_list",
    "journal_mode",
    "journal_size_limit",
    "locking_mode",
    "max_page_count",
    "mmap_size",
    "module_list",
    "page_count",
    "page_size",
    "pragma_list",
    "schema_version",
    "secure_delete",
    "synchronous",
    "temp_store",
    "wal_autocheckpoint",
];

thread_local! {
    /// Why the statement being prepared on this thread was refused: SQLite
    /// itself only says "not authorized". Statements are prepared on the
    /// blocking thread that then reports the error, so a thread-local carries
    /// the reason from the authorizer to [`take_denial`].
    static DENIAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the authorizer on a new connection.
pub fn install(connection: &rusqlite::Connection, allow_attach_file: bool) {
    connection.authorizer(Some(move |context: AuthContext<'_>| {
        match check(&context.action, allow_attach_file) {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                DENIAL.with(|denial| *denial.borrow_mut() = Some(reason));
                Authorization::Deny
            }
        }
    }));
}

/// The reason the last statement prepared on this thread was refused, if it was.
pub fn take_denial() -> Option<String> {
    DENIAL.with(|denial| denial.borrow_mut().take())
}

/// The policy itself, apart from SQLite.
pub fn check(action: &AuthAction<'_>, allow_attach_file: bool) -> Result<(), String> {
    match action {
        AuthAction::Attach { filename } => {
            if filename.is_empty() || *filename == ":memory:" || allow_attach_file {
                Ok(())
            } else {
                Err(format!(
                    "ATTACH of a file ({filename:?}) is not permitted: only \"\" and \":memory:\" may be attached unless the runtime config sets allow_attach_file = true for this database"
                ))
            }
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Err("load_extension is not permitted".to_string())
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let reading = pragma_value.is_none();
            if SETTABLE_PRAGMAS.contains(&name.as_str())
                || (reading && READABLE_PRAGMAS.contains(&name.as_str()))
            {
                Ok(())
            } else if READABLE_PRAGMAS.contains(&name.as_str()) {
                Err(format!(
                    "PRAGMA {name} may be read but not set: the host manages the database file and its journal"
                ))
            } else {
                Err(format!("PRAGMA {name} is not permitted"))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sandboxed connection on a fresh file, with the file's directory.
    fn sandboxed(allow_attach_file: bool) -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let connection = rusqlite::Connection::open_with_flags(
            dir.path().join("db.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        install(&connection, allow_attach_file);
        (dir, connection)
    }

    fn refusal(connection: &rusqlite::Connection, sql: &str) -> String {
        let error = connection
            .execute_batch(sql)
            .expect_err(&format!("{sql} was allowed"));
        // "not authorized" while preparing; "authorization denied" when the
        // refused step runs inside the statement (VACUUM INTO's ATTACH).
        let message = error.to_string();
        assert!(
            message.contains("not authorized") || message.contains("authorization denied"),
            "{sql}: {message}"
        );
        take_denial().unwrap_or_else(|| panic!("{sql}: no reason recorded"))
    }

    #[test]
    fn attaching_a_file_is_refused_and_memory_is_not() {
        let (dir, connection) = sandboxed(false);
        let other = dir.path().join("other.db");
        let reason = refusal(
            &connection,
            &format!("ATTACH DATABASE '{}' AS other", other.display()),
        );
        assert!(reason.contains("allow_attach_file"), "{reason}");
        assert!(!other.exists(), "the refused ATTACH created the file");
        // URI filenames are plain names: still a file, still refused.
        refusal(&connection, "ATTACH 'file:other.db?mode=memory' AS o");
        connection
            .execute_batch("ATTACH ':memory:' AS scratch")
            .unwrap();
        connection.execute_batch("ATTACH '' AS temporary").unwrap();
        connection.execute_batch("DETACH scratch").unwrap();
    }

    #[test]
    fn allow_attach_file_allows_it() {
        let (dir, connection) = sandboxed(true);
        let other = dir.path().join("other.db");
        connection
            .execute_batch(&format!("ATTACH '{}' AS other", other.display()))
            .unwrap();
        assert!(other.exists());
    }

    #[test]
    fn vacuum_into_and_load_extension_are_refused() {
        let (dir, connection) = sandboxed(false);
        connection.execute_batch("CREATE TABLE t (x)").unwrap();
        let copy = dir.path().join("copy.db");
        refusal(&connection, &format!("VACUUM INTO '{}'", copy.display()));
        assert!(!copy.exists(), "VACUUM INTO wrote the copy");
        let reason = refusal(&connection, "SELECT load_extension('/tmp/x.so')");
        assert!(reason.contains("load_extension"), "{reason}");
        // The positive control: plain VACUUM still runs.
        connection.execute_batch("VACUUM").unwrap();
    }

    #[test]
    fn file_pragmas_are_read_only_and_harmless_ones_stay() {
        let (_dir, connection) = sandboxed(false);
        connection.execute_batch("CREATE TABLE t (x)").unwrap();
        for sql in [
            "PRAGMA journal_mode = DELETE",
            "PRAGMA synchronous = OFF",
            "PRAGMA mmap_size = 1000000",
            "PRAGMA temp_store_directory = '/tmp'",
            "PRAGMA writable_schema = ON",
            "PRAGMA database_list",
        ] {
            let reason = refusal(&connection, sql);
            assert!(reason.contains("PRAGMA"), "{sql}: {reason}");
        }
        for sql in [
            "PRAGMA foreign_keys = ON",
            "PRAGMA foreign_keys",
            "PRAGMA table_info(t)",
            "PRAGMA journal_mode",
            "PRAGMA user_version = 3",
            "PRAGMA integrity_check",
        ] {
            connection
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}
