//! Host tests of the assigned-function policy.
