//! order-service (stub while menu lands).
pub const MIGRATIONS: &[&str] = &[];
#[derive(Clone)]
pub struct State {
    db: super::db::Db,
}
impl State {
    pub fn from_env(db: super::db::Db) -> anyhow::Result<Self> {
        Ok(State { db })
    }
}
pub mod repair {
    pub async fn run(_s: super::State, t: tokio_util::sync::CancellationToken) {
        t.cancelled().await
    }
}
pub fn app(state: State, identity: super::common::Identity) -> axum::Router {
    super::common::finish(
        axum::Router::new(),
        state.db.clone(),
        identity,
        serde_json::json!({}),
    )
}
