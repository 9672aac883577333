//! inventory-service (stub while menu lands).
pub const MIGRATIONS: &[&str] = &[];
pub fn app(db: super::db::Db, identity: super::common::Identity) -> axum::Router {
    super::common::finish(axum::Router::new(), db, identity, serde_json::json!({}))
}
