//! The gateway's tests in process: `routes`, `headers` and `wire` cover the pure parts
//! (matching, rewriting, target safety, header handling on both paths, breaker wording);
//! `proxy`, `streams` and `fast_path` run a real gateway (`support`) in front of real
//! loopback servers; `openapi` does both for the gateway's own /openapi.json. The binary itself is tested in
//! tests/gateway*.rs.

mod fast_path;
mod headers;
mod openapi;
mod proxy;
mod routes;
mod streams;
mod support;
mod wire;
