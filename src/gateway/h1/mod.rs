//! The HTTP/1.1 fast path: most requests (HTTP/1.1, no upgrade, no `Expect`, no chunked
//! body, a body of at most 64 KiB) are read, routed, rewritten and relayed here on plain
//! buffers, with no per-request header map, task or channel: the client's head is parsed in
//! place, the instance gets one prepared buffer, and the instance's response head is
//! rewritten into the client's write buffer with as much of the body as already arrived.
//! Anything else is handed, with its connection and the bytes read so far, to hyper
//! ([`super::general`]), which serves that connection from then on; so is the gateway's
//! own `GET /openapi.json` ([`super::openapi`]), which needs hyper's upstream connections.
//!
//! - [`serve`]: one client connection: read, decide, forward, relay; keep-alive, limits,
//!   drain.
//! - [`client`]: keep-alive connections to instances, one pool per worker, and the tries
//!   that use them.
//! - [`head`]: request and response heads parsed in place; framing and connection facts.
//! - [`chunked`]: where a chunked body ends, while it passes through unchanged.
//! - [`write`]: the heads as they leave: to the instance, to the client, and the gateway's
//!   own answers.

pub mod chunked;
pub mod client;
pub mod head;
pub mod serve;
pub mod write;

pub use client::Pool;
pub use serve::{Handoff, peer_of, serve};
