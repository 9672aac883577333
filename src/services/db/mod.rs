//! Each service's own SQLite database: opening, pragmas, migrations, a writer thread and a
//! small pool of reader connections, all off the async executor.
//!
//! Shape: one write connection owned by the [`writer`] thread, plus [`READERS`] reader
//! connections. WAL mode lets the readers run while the writer commits: a reader never
//! waits for the writer. Writes are queued to the writer, which commits whatever is queued
//! together in one `BEGIN IMMEDIATE` transaction, a savepoint per write (group commit; see
//! [`writer`]). `BEGIN IMMEDIATE` takes the write lock up front, so two replicas sharing one
//! file never interleave read-modify-write cycles (no lost updates); a replica that finds
//! the lock held waits up to [`BUSY_TIMEOUT`] (SQLite's busy handler) before its writes fail
//! with a 503. Statements use `prepare_cached`.
//!
//! Opening: a process holds an exclusive flock on `<db>-open.lock` while it opens the file,
//! switches it to WAL and migrates it, so replicas starting together on a fresh file never
//! race: the switch to WAL takes a lock that SQLite's busy handler does not wait for, and
//! made one of several replicas fail with "database is locked" now and then.
//!
//! Lookups: [`Db::read`] runs its query on the blocking pool, for reads whose work grows
//! with the data (list pages, repair scans). [`Db::lookup`] runs it inline on the async
//! worker, for bounded index lookups only (an item by id, a batch of at most 100 ids, an
//! order and its lines): those take a few microseconds from the page cache, while the hop to
//! the blocking pool and back cost about 20 us of CPU and two thread wake-ups per read, most
//! of what `GET /menu-items/{id}` cost (scripts/bench-services). WAL readers take no lock
//! the writer holds, so a lookup does not wait on writes; if all readers are busy it falls
//! back to the blocking pool instead of waiting on the executor.
//!
//! Durability, chosen per service ([`Durability`]): `journal_mode=WAL` with
//! `synchronous=FULL` (order, inventory) or `NORMAL` (menu). A write is answered only after
//! the commit that holds it returned. With `FULL` that commit was fsynced to the WAL file,
//! so an acknowledged order or reservation survives power loss and OS crashes; group commit
//! (one transaction for everything queued, see [`writer`]) shares each fsync among the
//! writes that arrived together. With `NORMAL` the commit is in the kernel's page cache
//! before SQLite returns, which survives SIGKILL (or any crash) of the *process*; the fsync
//! waits for checkpoints, so power loss may lose the last commits: fine for the menu, which
//! its owners can re-enter, not for money or stock.

mod writer;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use self::writer::{Write, Writer};
use super::http::ApiError;

pub use self::writer::MAX_BATCH;

/// Reader connections per process.
pub const READERS: usize = 3;
/// How long a write waits for another replica's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Power loss and OS crashes: every commit is fsynced (`synchronous=FULL`).
    PowerLoss,
    /// Crashes of the process only (`synchronous=NORMAL`): faster.
    ProcessCrash,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::PowerLoss => "FULL",
            Durability::ProcessCrash => "NORMAL",
        }
    }
}

/// A cheap-to-clone handle on the service's database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies `migrations`: entry `i`
    /// moves the schema from `user_version` i to i+1. Blocking: call it before serving.
    pub fn open(path: &Path, migrations: &[&str], durability: Durability) -> anyhow::Result<Db> {
        use anyhow::Context;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
        }
        // Replicas starting together on a fresh file would race to switch it to WAL (a lock
        // SQLite's busy handler does not wait for) and to migrate it: one at a time.
        let _opening = open_lock(path)
            .with_context(|| format!("cannot lock {} for opening", path.display()))?;
        let mut writer = connect(path, false, durability)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "{} cannot use WAL mode (got {mode}); is it on a network file system?",
            path.display()
        );
        migrate(&mut writer, migrations)
            .with_context(|| format!("cannot migrate the database {}", path.display()))?;
        let readers = (0..READERS)
            .map(|_| connect(path, true, durability).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let writer = Writer::start(writer).context("cannot start the database writer thread")?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer,
                readers,
                next: AtomicUsize::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a reader connection, off the executor: for reads whose work grows with
    /// the data (list pages, repair scans).
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || f(&inner.reader())).await
    }

    /// Runs `f` on an idle reader connection right here, on the calling task's thread: only
    /// for bounded index lookups (by primary key or a unique index, at most a few hundred
    /// rows), which take microseconds. See "Lookups" in the module docs. When every reader
    /// is busy it falls back to [`Db::read`] rather than wait on the executor.
    pub async fn lookup<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let Some(conn) = self.inner.idle_reader() else {
            return self.read(f).await;
        };
        // As on the blocking pool, a panicking read is a 503, not a dropped connection.
        catch_unwind(AssertUnwindSafe(|| f(&conn))).unwrap_or_else(|_| {
            tracing::error!("a database read panicked");
            Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the database read failed; retry shortly",
            ))
        })
    }

    /// Runs `f` on the writer thread, atomically: its changes are committed when it returns
    /// `Ok` (and this answers only once they are), rolled back when it returns `Err`. It may
    /// share its transaction with other writes queued at the same time (see [`writer`]).
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let (job, answer) = Write::job(f);
        self.inner.writer.submit(job);
        answer.await.unwrap_or_else(|_| {
            Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the database write did not complete; retry shortly",
            ))
        })
    }

    /// True when the database file is still in place and answers a query that touches the
    /// schema. (A deleted file keeps working through open handles, but every write from then
    /// on would be lost at the next restart: that is unusable.)
    pub async fn healthy(&self) -> bool {
        let path = self.inner.path.clone();
        self.lookup(move |conn| {
            if !path.exists() {
                return Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the database file is gone",
                ));
            }
            conn.prepare_cached("SELECT count(*) FROM sqlite_master")?
                .query_row([], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
        .is_ok()
    }
}

impl Inner {
    /// The first idle reader, or (all busy) the next one in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        if let Some(guard) = self.idle_reader() {
            return guard;
        }
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[at])
    }

    /// The first reader nobody is using, without waiting; poisoned ones included (see [`lock`]).
    fn idle_reader(&self) -> Option<MutexGuard<'_, Connection>> {
        self.readers.iter().find_map(|conn| match conn.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        })
    }
}

/// A poisoned mutex only means another call panicked mid-way; the connection itself is
/// still consistent (SQLite rolls back an unfinished transaction), so keep using it.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "database task failed");
            Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the database call did not complete; retry shortly",
            ))
        })
}

/// An exclusive lock on `<db>-open.lock` beside the database, held while a process opens,
/// switches to WAL and migrates it; released when dropped.
fn open_lock(path: &Path) -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    let mut name = path.as_os_str().to_owned();
    name.push("-open.lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(name))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| std::io::Error::from(errno))
}

fn connect(path: &Path, read_only: bool, durability: Durability) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // See "Durability" in the module docs.
    conn.pragma_update(None, "synchronous", durability.pragma())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Plan each statement once, whatever its bound values. Without this, SQLite (3.4x) marks
    // a statement with `LIMIT ?` (every paged list) or a `json_each(?)` filter to be
    // re-parsed and re-planned on every new binding, which cost the batch menu lookup of
    // each order about a third of menu-service's CPU (scripts/bench-services, perf).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    if read_only {
        conn.pragma_update(None, "query_only", "ON")?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies the pending migrations in one immediate transaction, so replicas starting
/// together apply each migration exactly once.
fn migrate(conn: &mut Connection, migrations: &[&str]) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = i64::try_from(migrations.len())?;
    anyhow::ensure!(
        version <= known,
        "schema version {version} is newer than this servio knows ({known}); upgrade servio"
    );
    for (index, sql) in migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(version)?)
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tracing::info!(version = index + 1, "applied schema migration");
    }
    tx.commit()?;
    Ok(())
}

/// The WHERE clause of a list query, built from the filters in use only, so the planner can
/// pick the right index; each combination is its own cached statement.
#[derive(Debug, Default)]
pub struct Where {
    conditions: Vec<String>,
    args: Vec<rusqlite::types::Value>,
}

impl Where {
    /// Adds `condition`, whose single `?` binds `value`.
    pub fn and(&mut self, condition: &str, value: impl Into<rusqlite::types::Value>) {
        self.args.push(value.into());
        let slot = format!("?{}", self.args.len());
        self.conditions.push(condition.replacen('?', &slot, 1));
    }

    /// `select` + conditions + keyset page on the unique column `key`:
    /// `... AND key > cursor ORDER BY key LIMIT n`.
    pub fn page_sql(&mut self, select: &str, key: &str, page: &super::params::Page) -> String {
        if let Some(after) = &page.after {
            self.and(&format!("{key} > ?"), after.clone());
        }
        self.args.push(page.fetch().into());
        let limit = self.args.len();
        let mut sql = select.to_string();
        if !self.conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY {key} LIMIT ?{limit}"));
        sql
    }

    pub fn args(&self) -> impl Iterator<Item = &rusqlite::types::Value> {
        self.args.iter()
    }
}

/// Now, as RFC 3339 with milliseconds (the timestamps every record carries).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Now, as milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether `error` is a UNIQUE/PRIMARY KEY violation.
pub fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &[&str] = &["CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);"];

    #[tokio::test]
    async fn migrates_once_and_writes_are_visible_to_readers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/x.db");
        let db = Db::open(&path, SCHEMA, Durability::PowerLoss).unwrap();
        db.write(|tx| Ok(tx.execute("INSERT INTO t (n) VALUES (7)", [])?))
            .await
            .unwrap();
        drop(db);
        // Reopening does not re-run the migration (it would fail: table exists).
        let db = Db::open(&path, SCHEMA, Durability::PowerLoss).unwrap();
        let n: i64 = db
            .read(|c| Ok(c.query_row("SELECT n FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 7);
        assert!(db.healthy().await);
    }

    #[tokio::test]
    async fn durability_sets_how_commits_reach_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        for (durability, name, expected) in [
            (Durability::PowerLoss, "full.db", 2),
            (Durability::ProcessCrash, "normal.db", 1),
        ] {
            let db = Db::open(&dir.path().join(name), SCHEMA, durability).unwrap();
            let level: i64 = db
                .read(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?))
                .await
                .unwrap();
            assert_eq!(level, expected, "{durability:?}: 2 is FULL, 1 is NORMAL");
        }
    }

    #[tokio::test]
    async fn paged_queries_are_planned_once_whatever_their_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("x.db"), SCHEMA, Durability::PowerLoss).unwrap();
        let reprepares = db
            .read(|conn| {
                let sql = "SELECT n FROM t WHERE n IN (SELECT value FROM json_each(?1)) LIMIT ?2";
                for (ids, limit) in [("[1,2]", 3), ("[3]", 2), ("[4,5,6]", 4)] {
                    let mut stmt = conn.prepare_cached(sql)?;
                    stmt.query_map(rusqlite::params![ids, limit], |r| r.get::<_, i64>(0))?
                        .collect::<Result<Vec<_>, _>>()?;
                }
                let stmt = conn.prepare_cached(sql)?;
                Ok(stmt.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .await
            .unwrap();
        assert_eq!(reprepares, 0);
    }

    #[tokio::test]
    async fn a_lookup_never_waits_on_the_executor_for_a_busy_reader() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("x.db"), SCHEMA, Durability::PowerLoss).unwrap();
        let inline = db
            .lookup(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await;
        assert_eq!(inline.unwrap(), 1);

        let lookup = db.lookup(|c| Ok(c.query_row("SELECT 2", [], |r| r.get::<_, i64>(0))?));
        tokio::pin!(lookup);
        let busy: Vec<_> = db.inner.readers.iter().map(lock).collect();
        // Every reader is taken: the lookup goes to the blocking pool instead of blocking here.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(lookup.as_mut().poll(cx)));
        assert!(first.await.is_pending());
        drop(busy);
        assert_eq!(lookup.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn failed_write_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("x.db"), SCHEMA, Durability::PowerLoss).unwrap();
        let result: Result<(), ApiError> = db
            .write(|tx| {
                tx.execute("INSERT INTO t (n) VALUES (1)", [])?;
                Err(ApiError::conflict("nope", "rolled back"))
            })
            .await;
        assert!(result.is_err());
        let n: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
