//! The writer: one thread owns the write connection and commits queued writes in groups.
//!
//! Each write is a [`Job`] sent over a channel. The thread takes the first job waiting, then
//! every other job already queued (up to [`MAX_BATCH`]), and runs them in **one**
//! `BEGIN IMMEDIATE` transaction, each inside its own `SAVEPOINT`: a job that fails is rolled
//! back to its savepoint, undoing its own changes and nothing of its neighbours'. Then one
//! `COMMIT`, and only then does any job's caller get its answer. A job is therefore answered
//! `Ok` only once its changes are committed (in the WAL: see the durability notes in
//! [`super`]), exactly as with one transaction per write; if the commit fails, every job of
//! the group gets the error and none of them took effect.
//!
//! Why: under load many writes arrive together. One commit for all of them writes each
//! shared page (a table's last leaf, an index's last leaf, a stock row) to the WAL once
//! instead of once per write, which also makes WAL checkpoints (and their fsyncs) that much
//! rarer; and a thread fed by a channel replaces a blocking-pool task per write that then
//! queued on a mutex. The jobs of a group run one after another, in arrival order, so each
//! sees the previous ones' effects as it would have with separate transactions.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::services::http::ApiError;

/// Most writes committed together. Bounds how long the first write of a group waits for
/// the others to run (each is tens of microseconds).
pub const MAX_BATCH: usize = 64;

/// One write waiting for the writer thread.
pub trait Job: Send {
    /// Runs the write on the writer's connection, inside the group's transaction; true when
    /// it succeeded and its changes are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the group is settled: `Ok` when it was committed.
    fn settle(self: Box<Self>, committed: Result<(), ApiError>);
}

/// A write of the caller's closure `F`, answered with its value `T` through a oneshot.
pub struct Write<T, F> {
    work: Option<F>,
    result: Option<Result<T, ApiError>>,
    reply: oneshot::Sender<Result<T, ApiError>>,
}

impl<T, F> Write<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
{
    /// The job for `work` and the receiver of its answer.
    pub fn job(work: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, ApiError>>) {
        let (reply, answer) = oneshot::channel();
        let job = Write {
            work: Some(work),
            result: None,
            reply,
        };
        (Box::new(job), answer)
    }
}

impl<T, F> Job for Write<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking write must not take the writer thread (and every later write) down.
        let result = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
            tracing::error!("a database write panicked; rolled back");
            Err(unavailable("the database write failed; retry shortly"))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn settle(self: Box<Self>, committed: Result<(), ApiError>) {
        let answer = match self.result {
            Some(Ok(value)) => committed.map(|()| value),
            Some(Err(error)) => Err(error),
            None => Err(committed
                .err()
                .unwrap_or_else(|| unavailable("the database write did not run; retry shortly"))),
        };
        // The caller may have gone away (request cancelled): nothing to tell then.
        let _ = self.reply.send(answer);
    }
}

/// The handle on the writer thread; dropping it lets the thread finish the queued writes,
/// close the connection and exit, and waits for that.
pub struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub fn start(conn: Connection) -> std::io::Result<Writer> {
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&conn, &jobs))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `job`; when the thread is gone the job is answered with a 503 at once.
    pub fn submit(&self, job: Box<dyn Job>) {
        let Some(queue) = &self.queue else {
            return job.settle(Err(unavailable("the database is closed")));
        };
        if let Err(mpsc::SendError(job)) = queue.send(job) {
            tracing::error!("the database writer thread is gone");
            job.settle(Err(unavailable(
                "the database writer stopped; retry shortly",
            )));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // The last handle can be dropped by a job running on the writer thread itself;
            // it cannot wait for itself, and exits on its own once the queue is empty.
            if thread.thread().id() != std::thread::current().id() && thread.join().is_err() {
                tracing::error!("the database writer thread panicked");
            }
        }
    }
}

fn run(conn: &Connection, jobs: &mpsc::Receiver<Box<dyn Job>>) {
    let mut stats = Stats::default();
    while let Ok(first) = jobs.recv() {
        let mut group = Vec::with_capacity(MAX_BATCH);
        group.push(first);
        while group.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(conn, group, &mut stats);
    }
    stats.log();
}

/// What the writer did over its life, logged when it stops: how well writes were grouped and
/// what a commit cost (a commit that ran a WAL checkpoint includes its fsyncs).
#[derive(Debug, Default)]
struct Stats {
    writes: u64,
    groups: u64,
    failed_groups: u64,
    /// BEGIN to COMMIT of each group: running its writes plus committing them.
    busy: Duration,
    /// The COMMIT statements alone.
    commit: Duration,
    longest_commit: Duration,
}

impl Stats {
    fn log(&self) {
        if self.groups == 0 {
            return;
        }
        let per = |total: Duration, n: u64| total / u32::try_from(n).unwrap_or(u32::MAX).max(1);
        tracing::info!(
            writes = self.writes,
            commits = self.groups - self.failed_groups,
            failed = self.failed_groups,
            writes_per_commit = format!("{:.1}", self.writes as f64 / self.groups as f64),
            mean_transaction = ?per(self.busy, self.groups),
            mean_commit = ?per(self.commit, self.groups),
            longest_commit = ?self.longest_commit,
            "database writer stopped"
        );
    }
}

/// Runs `group` in one transaction, a savepoint per job, and answers every job.
fn commit_group(conn: &Connection, group: Vec<Box<dyn Job>>, stats: &mut Stats) {
    let began = Instant::now();
    stats.groups += 1;
    stats.writes += group.len() as u64;
    if let Err(error) = exec(conn, "BEGIN IMMEDIATE") {
        stats.failed_groups += 1;
        // Busy past the timeout (another replica holds the lock), disk trouble...
        let error = ApiError::from(error);
        for job in group {
            job.settle(Err(error.clone()));
        }
        return;
    }
    let mut ran = Vec::with_capacity(group.len());
    let mut pending = group.into_iter();
    let mut broken = None;
    for mut job in pending.by_ref() {
        let kept = exec(conn, "SAVEPOINT job").and_then(|()| {
            if job.run(conn) {
                exec(conn, "RELEASE job")
            } else {
                exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
            }
        });
        ran.push(job);
        // SQLite rolls the whole transaction back by itself on some errors (disk full,
        // I/O error): then the jobs before this one are undone too.
        if let Err(error) = kept {
            broken = Some(ApiError::from(error));
            break;
        }
        if conn.is_autocommit() {
            broken = Some(unavailable("the database transaction was rolled back"));
            break;
        }
    }
    let outcome = match broken {
        None => {
            let committing = Instant::now();
            let committed = exec(conn, "COMMIT").map_err(ApiError::from);
            let took = committing.elapsed();
            stats.commit += took;
            stats.longest_commit = stats.longest_commit.max(took);
            committed
        }
        Some(error) => Err(error),
    };
    stats.busy += began.elapsed();
    if outcome.is_err() {
        stats.failed_groups += 1;
    }
    if outcome.is_err() && !conn.is_autocommit() {
        if let Err(error) = exec(conn, "ROLLBACK") {
            tracing::error!(%error, "cannot roll back a failed group of writes");
        }
    }
    for job in ran {
        job.settle(outcome.clone());
    }
    // Jobs after a broken one never ran: they fail with the same error, the caller retries.
    for job in pending {
        job.settle(outcome.clone());
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::super::Db;
    use crate::services::http::ApiError;

    const SCHEMA: &[&str] = &["CREATE TABLE t (n INTEGER PRIMARY KEY);"];

    async fn count(db: &Db) -> i64 {
        db.read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_in_a_group_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("x.db"),
            SCHEMA,
            crate::services::db::Durability::PowerLoss,
        )
        .unwrap();
        // Hold the writer busy so the writes below queue up and are committed in groups.
        let busy = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // Every third write inserts its row, then fails.
        let writes: Vec<_> = (0..300_i64)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |conn| {
                        conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                        if n % 3 == 0 {
                            return Err(ApiError::conflict("nope", "rolled back"));
                        }
                        Ok(n)
                    })
                    .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for write in writes {
            results.push(write.await.unwrap());
        }
        busy.await.unwrap().unwrap();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 200);
        assert_eq!(count(&db).await, 200);
        let failed_kept: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM t WHERE n % 3 = 0", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(failed_kept, 0);
    }

    #[tokio::test]
    async fn a_panicking_write_is_a_503_and_the_writer_lives_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("x.db"),
            SCHEMA,
            crate::services::db::Durability::PowerLoss,
        )
        .unwrap();
        let panicked: Result<(), ApiError> = db
            .write(|conn| {
                conn.execute("INSERT INTO t (n) VALUES (1)", [])?;
                panic!("boom")
            })
            .await;
        assert_eq!(panicked.unwrap_err().status.as_u16(), 503);
        db.write(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (2)", [])?))
            .await
            .unwrap();
        assert_eq!(count(&db).await, 1);
    }

    #[tokio::test]
    async fn writes_are_on_disk_when_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let db = Db::open(&path, SCHEMA, crate::services::db::Durability::PowerLoss).unwrap();
        db.write(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (7)", [])?))
            .await
            .unwrap();
        // Another connection (as another process would) sees the answered write at once.
        let other = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM t WHERE n = 7", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
