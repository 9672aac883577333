//! The gateway's tests in process: `routes` and `headers` cover the pure parts (matching,
//! rewriting, target safety, header handling, breaker wording); `proxy` and `streams` run a
//! real gateway (`support`) in front of real loopback servers. The binary itself is tested in
//! tests/gateway*.rs.

mod headers;
mod proxy;
mod routes;
mod streams;
mod support;
