//! Unit tests of the gateway's pure parts: route matching and rewriting, target safety,
//! header handling, bodies and metrics text. The proxy end to end is tested through the real
//! binary in tests/gateway*.rs.

mod headers;
mod proxy;
mod routes;
mod streams;
mod support;
