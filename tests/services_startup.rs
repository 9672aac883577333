//! Replicas starting together on one fresh database: every one of them comes up, every
//! time (switching a new SQLite file to WAL and migrating it must never race).

mod services_support;

use std::process::{Child, Command, Stdio};

use services_support::{eventually, get};

/// Kills the replicas of one round, whatever happens.
struct Replicas(Vec<(Child, u16, std::path::PathBuf)>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for (child, _, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn eight_replicas_start_cleanly_on_one_fresh_database_twenty_times() {
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("inventory.db");
        let kind = if round % 2 == 0 { "inventory" } else { "order" };
        let mut replicas = Replicas(Vec::new());
        let mut taken = Vec::new();
        for i in 0..8 {
            // Below the ephemeral range, as servio picks them: no outgoing connection (like
            // this test's own health checks) can be given the port before its replica binds.
            let port = servio::process::ports::pick_free_port(&|p| taken.contains(&p));
            taken.push(port);
            let log = dir.path().join(format!("replica-{i}.log"));
            let out = std::fs::File::create(&log).expect("log file");
            let child = Command::new(env!("CARGO_BIN_EXE_servio"))
                .args(["serve", kind])
                .env("PORT", port.to_string())
                .env("SERVIO_DB_PATH", &db)
                .env("SERVIO_SERVICE", format!("{kind}-service"))
                .env("SERVIO_ADMIN_URL", "http://127.0.0.1:9")
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone"))
                .stderr(out)
                .spawn()
                .expect("spawn servio serve");
            replicas.0.push((child, port, log));
        }
        for (child, port, log) in &mut replicas.0 {
            let url = format!("http://127.0.0.1:{port}/health");
            eventually(&format!("round {round}: replica on {port} healthy"), || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "round {round}: a {kind} replica exited ({status}):\n{}",
                        std::fs::read_to_string(&*log).unwrap_or_default()
                    );
                }
                (get(&url).0 == 200).then_some(())
            });
        }
    }
}
