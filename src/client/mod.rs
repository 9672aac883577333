//! The discovery-aware service client: finds instances through the registry API and calls
//! them through [`crate::balance`].
