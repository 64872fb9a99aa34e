//! Host tests of the backend: an in-memory xenstore, the tree after
//! `create` against a real libxl + Linux run, the state machine, and ops.
