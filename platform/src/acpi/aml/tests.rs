//! Tests of the AML reader.
