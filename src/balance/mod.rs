//! Picking an instance, per-instance breakers and the retry budget: one mechanism shared by
//! the gateway and the service client.
